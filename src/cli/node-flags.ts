// The Node.js flags every `sixpn` process runs with: bin/sixpn passes them (a test keeps its exec
// line equal to this list), and whatever starts `sixpn up` itself (the demos, the test labs, the
// benches) passes them too, so what is measured is what an operator runs.
//
// --max-semi-space-size=16: a host loading a large topology (50,000 machines) builds ~60 MB of
// long-lived objects in one burst; V8 reads that as a reason to grow the young generation to its
// maximum, 2 × 64 MB in Node's build (no pointer compression), and keeps it for the life of the
// process. With 16 MB semi-spaces the load's RSS is ~85 MB lower and the load no slower
// (npm run bench:topology); the packet path allocates next to nothing, so it does not notice.
export const SIXPN_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

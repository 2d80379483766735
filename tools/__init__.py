"""Tools around the product, not part of it: the fleet simulator (`tools.fleet`) that
plays CMS instances over HTTP for the demo data, `simulate_fleet` and the benchmarks."""

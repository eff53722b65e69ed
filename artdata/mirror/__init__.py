"""The loopback mirror: the museums' APIs and image hosts, rebuilt from their published shapes on 127.0.0.1
for tests, benchmarks and the demo (nothing a test sends leaves the machine).

    server       the core: two HTTP servers (api, media), Faults, Response, the routes registry (`site`)
    sample       the bundled CC0 sample every site answers from, the generated JPEGs, shared shape helpers
    met, tate, iiif, aic, cleveland, nga    one module per site; each registers itself with `@site`
    findartinfo  the auction site, attached on request (`findartinfo.attach(mirror)`), not by default

Importing the package imports every site module, so `Mirror()` serves them all:

    from artdata.mirror import Faults, Mirror
    with Mirror(faults=Faults(block_burst=30)) as m:
        m.met_api_base
"""
from artdata.mirror.sample import (COUNTRY, MetData, aspect_size, bundled_met, bundled_tate, corrupt, label_colour,
                                   parse_size, render_jpeg)
from artdata.mirror.server import SITES, Faults, Hold, Mirror, RequestLog, Response, Route, json_response, \
    object_response, site
from artdata.mirror import met, tate, iiif, aic, cleveland, nga  # noqa: E402,F401  (each registers its site)

__all__ = ["COUNTRY", "MetData", "aspect_size", "bundled_met", "bundled_tate", "corrupt", "label_colour",
           "parse_size", "render_jpeg", "SITES", "Faults", "Hold", "Mirror", "RequestLog", "Response", "Route",
           "json_response", "object_response", "site"]

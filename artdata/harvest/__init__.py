"""Harvesting: a source's ids -> records and images, politely, resumably.

    runner     harvest(source, cfg, home): ids -> metadata -> image jobs -> journal -> manifest
    client     PoliteClient: per-host rate, backoff, deadlines, size caps, block and challenge detection
    transport  FastTransport: artdata's own HTTP/1.1 transport under httpx (keep-alive, checked addresses)
    workers    ImageWorkers: image processes (decode, resize, store) fed from the event loop through pipes

The package re-exports what scripts use:

    from artdata.harvest import HarvestConfig, harvest
"""
import importlib

# name -> the module that defines it; loaded on first use, so that an image worker (which imports
# artdata.harvest.workers) does not pull in httpx, tenacity and the runner
_EXPORTS = {**dict.fromkeys(("ClientConfig", "FetchError", "PoliteClient"), "client"),
            **dict.fromkeys(("USER_URL_FIELDS", "HarvestConfig", "HarvestResult", "Job", "Journal", "Source",
                             "decode_json", "drain", "fetch_image", "fetch_record", "harvest", "job_dir",
                             "user_hosts"), "runner"),
            "ImageWorkers": "workers"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"artdata.harvest.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'artdata.harvest' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))

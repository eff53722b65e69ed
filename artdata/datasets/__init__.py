"""Datasets: what the stages hand each other, and how it is kept and shared.

    records      the record schema (RECORD_SCHEMA): the one contract between every stage
    images       the content-addressed image store (sha256 -> resized JPEG) and the image processing
    fingerprint  the perceptual hash of a decoded image (kept in the records) and its structure map
    manifest     versioned manifests: write, read, diff, verify (an immutable, content-hashed version)
    remote       push / pull of manifest versions and their images through fsspec (local folders, https, s3)
    materialize  fetch the images a metadata-only manifest names, into the store

Import the module you need (this package imports nothing, so `artdata.train` never pulls in fsspec or httpx):

    from artdata.datasets.manifest import load
"""

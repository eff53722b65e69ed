"""For `harvest_bench.py --fingerprint-ab`: imported by the harvest's process and its forkserver (so by every image
worker forked from it), it switches the fingerprint off; the same harvest with and without it gives the
fingerprint's cost in a harvest's images/s. Only a benchmark imports this."""
import artdata.datasets.images as images

images.fingerprints = lambda im: (None, None)

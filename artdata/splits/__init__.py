"""From a harvested manifest to a labelled, split one.

    clean    pure tag cleaners with a documented policy for bad values (culture, medium, bins, ...)
    recipes  the recipes (culture, department, medium, price, movement), their steps' counts, the seeded
             stratified split and merged sources: build_split(home, "culture", "met@3f2a", ...)
    folder   a folder of images (one subfolder per class) imported as a labelled manifest
    groups   the records of one artwork (same object, parent/child, Wikidata item, near-duplicate images), the
             grouped stratified split (whole groups, seeded) and audit
    neardup  every pair of fingerprints within a distance (block tables), confirmed by aligned image tiles

Import the module you need: `from artdata.splits.recipes import build_split`.
"""

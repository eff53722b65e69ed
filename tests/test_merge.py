"""One dataset from several museums: `build-split culture --from met --from iiif --from aic` merges the harvested
manifests, applies the same cleaning and region map to each source's fields, keys records by source + id,
and counts rows, drops and classes per source in the card. The last test merges three real harvests of the
mirror (the Met, Cleveland, the NGA) and checks that each museum's own fields give the same class."""
import json

import pytest
from typer.testing import CliRunner

from artdata import ArtdataError
from artdata.cli import app
from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig, ImageStore, process_image
from artdata.datasets.manifest import load, write_manifest
from artdata.mirror import Mirror, render_jpeg
from artdata.paths import Home
from artdata.datasets.records import new_record, to_table
from artdata.sources.iiif import IiifSource
from artdata.sources.met import MetSource
from artdata.splits.recipes import build_split

# a third museum's records, as its harvester maps them: its own spellings of cultures and places
# (and the Art Institute's spelling of classifications: "painting" is the Met's "Paintings")
THIRD = [("England", None, "painting"), ("Netherlandish", None, "painting"), (None, "Dutch", "painting"),
         ("probably French", None, "painting"), ("Japan", None, "painting"), ("Italian", None, "drawing and watercolor")]


def _cfg(name):
    return HarvestConfig(manifest=name, image=ImageConfig(size=48), workers=1,
                         client=ClientConfig(rate=200, concurrency=8, retries=1, block_pause=0.2))


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("merge"))
    with Mirror() as m:
        paintings = [o for o, r in m.met.rows.items() if r.get("Classification") == "Paintings"]
        pd_paintings = [o for o in paintings if m.met.rows[o].get("Is Public Domain")]
        ids = home.root / "met-ids.txt"
        ids.write_text("\n".join(paintings[:120]))
        harvest(MetSource(api_base=m.met_api_base, ids_from=str(ids), image_size=48), _cfg("met"), home)
        listing = home.root / "iiif.txt"
        listing.write_text("".join(f"{m.base('api')}/iiif/3/manifest/{o}.json\n" for o in pd_paintings[-60:]))
        harvest(IiifSource([str(listing)], image_size=48), _cfg("iiif"), home)
    store = ImageStore(home.images)
    recs = []
    for i in range(60):
        culture, nat, cls = THIRD[i % len(THIRD)]
        res = process_image(render_jpeg(f"aic-{i}", str(culture or nat), (64, 56)), ImageConfig(size=48))
        store.put(res.data, res.key)
        recs.append(new_record("aic", 1000 + i, culture=culture, artist_nationality=nat, classification=cls,
                               title=f"Work {i}", **res.fields()))
    write_manifest(home.manifests, "aic", to_table(recs))
    return home


def test_merged_culture_split_counts_per_source(three):
    home = three
    refs = [load(home.manifests, n).ref for n in ("met", "iiif", "aic")]
    s = build_split(home, "culture", ["met", "iiif", "aic"], name="cultures", min_count=5)
    assert s.card["lineage"]["parents"] == refs
    df = s.to_pandas()
    assert set(df.source) == {"met", "iiif", "aic"}
    assert not (df.source + ":" + df.source_id).duplicated().any()
    first = s.card["steps"][0]
    assert first["rows_by_source"] == {n: load(home.manifests, n).rows for n in ("aic", "iiif", "met")}
    cls_step = next(x for x in s.card["steps"] if x["step"].startswith("classification in"))
    assert cls_step["dropped_by_source"]["aic"] == {"not Paintings": 10}      # the Drawings
    by_source = s.card["classes_by_source"]
    assert set(by_source) == {"met", "iiif", "aic"}
    total = {}
    for classes in by_source.values():
        for k, v in classes.items():
            total[k] = total.get(k, 0) + v
    assert total == s.card["counts"]["by_class"]
    aic = df[df.source == "aic"]
    # the same region map and cleaning as the Met's fields: England -> British, Netherlandish -> Flemish,
    # "probably French" -> French, Japan -> Japanese, nationality when culture is empty
    assert set(aic.label) == {"British", "Flemish", "Dutch", "French", "Japanese"}
    assert by_source["aic"] == {k: 10 for k in ("British", "Dutch", "Flemish", "French", "Japanese")}
    again = build_split(home, "culture", ["met", "iiif", "aic"], name="cultures", min_count=5)
    assert again.version == s.version


def test_merge_cli_report_and_errors(three, tmp_path):
    home = three
    r = CliRunner().invoke(app, ["build-split", "culture", "--from", "met", "--from", "aic", "--name", "two",
                                 "--min-count", "5", "--home", str(home.root)])
    assert r.exit_code == 0, r.output
    assert "  from aic: British 10" in r.output and "  from met: " in r.output
    from artdata.reports.report import dataset_report
    page = dataset_report(home, "two")
    data = json.loads((page.parent / "report.json").read_text())
    assert data["classes_by_source"]["aic"]["British"] == 10
    assert "Classes per source" in page.read_text()
    with pytest.raises(ArtdataError, match="--from names the same version twice"):
        build_split(home, "culture", ["aic", "aic"])
    r = CliRunner().invoke(app, ["build-split", "culture", "--from", "met", "--from", "nope", "--home",
                                 str(home.root)])
    assert r.exit_code == 1 and "no manifest named 'nope'" in r.output


def test_merged_culture_split_from_met_cleveland_and_nga(tmp_path):
    """Three real harvests of the mirror (metadata only): the Met, Cleveland (a culture list such as
    "France, 19th century" and creators' descriptions) and the NGA (the first artist's nationality only). Each
    source's own fields reach the same class for the same work; drops and classes are counted per source."""
    from artdata.sources.cleveland import ClevelandSource
    from artdata.sources.nga import NgaSource
    home = Home(tmp_path)
    meta = lambda name: HarvestConfig(manifest=name, metadata_only=True,
                                      client=ClientConfig(rate=200, concurrency=8, retries=1, block_pause=0.2))
    with Mirror() as m:
        paintings = [o for o, r in m.met.rows.items() if r.get("Classification") == "Paintings"
                     and r.get("Is Public Domain")]
        ids = home.root / "met-ids.txt"
        ids.parent.mkdir(parents=True, exist_ok=True)
        ids.write_text("\n".join(paintings))
        harvest(MetSource(api_base=m.met_api_base, ids_from=str(ids)), meta("met"), home)
        harvest(ClevelandSource(api_base=m.base("api") + "/cma/api", types=["Painting"]), meta("cleveland"), home)
        harvest(NgaSource(data=m.base("api") + "/nga/data", classifications=["Painting"]), meta("nga"), home)
        no_nationality = [o for o in paintings if not (m.met.rows[o].get("Artist Nationality") or "").strip()]
    s = build_split(home, "culture", ["met", "cleveland", "nga"], name="three-museums", min_count=3)
    df = s.to_pandas()
    assert s.card["steps"][0]["rows_by_source"] == {"cleveland": len(paintings), "met": len(paintings),
                                                    "nga": len(paintings)}
    label = {(r.source, r.source_id): r.label for r in df.itertuples()}
    met_labels = {i: lab for (src, i), lab in label.items() if src == "met"}
    cma_labels = {i: lab for (src, i), lab in label.items() if src == "cleveland"}
    assert cma_labels == met_labels and len(met_labels) > 100      # "France, 19th century" -> French, as the Met's
    nga_labels = {i: lab for (src, i), lab in label.items() if src == "nga"}
    assert nga_labels and all(met_labels.get(i) == lab for i, lab in nga_labels.items())
    # the NGA has no culture field: works without an artist nationality are dropped there (Cleveland, with its
    # culture list, loses only the works the Met cannot place either)
    step = next(x for x in s.card["steps"] if "no culture" in json.dumps(x.get("dropped_by_source", {})))
    drops = step["dropped_by_source"]
    assert drops["nga"]["no culture"] == len(no_nationality) > drops["met"]["no culture"]
    assert drops["cleveland"] == drops["met"]
    by_source = s.card["classes_by_source"]
    assert set(by_source) == {"met", "cleveland", "nga"} and by_source["met"] == by_source["cleveland"]
    assert sum(by_source["nga"].values()) == len(nga_labels)
    assert len(s.card["lineage"]["parents"]) == 3
    assert s.card["field_mapping"]["cleveland"]["classification"] == "type"          # documented in the card
    assert set(s.card["field_mapping"]) == {"met", "cleveland", "nga"}
    from artdata.reports.report import dataset_report
    page = dataset_report(home, "three-museums").read_text()
    assert "Fields per source" in page and "objects.departmentabbr" in page


def test_merge_names_a_source_it_dropped_whole_and_a_single_class_is_said(tmp_path):
    """build-split over several sources: one whose every record is dropped is named with the reasons; a split
    left with one class says so; a --min-count no class meets suggests the largest class's size."""
    from typer.testing import CliRunner
    from artdata.cli import app
    from artdata.datasets.manifest import write_manifest
    from artdata.datasets.records import new_record, to_table
    from artdata.paths import Home
    home = Home(tmp_path / "home")
    met = [new_record("met", str(i), status="ok", classification="Paintings", culture="French",
                      image_key=f"{i:064x}") for i in range(30)]
    other = [new_record("cleveland", str(i), status="ok", classification="Sculpture", culture="Italian",
                        image_key=f"{i + 100:064x}") for i in range(12)]
    write_manifest(home.manifests, "m", to_table(met), lineage={"source": "met", "parents": []})
    write_manifest(home.manifests, "c", to_table(other), lineage={"source": "cleveland", "parents": []})
    r = CliRunner().invoke(app, ["build-split", "culture", "--from", "m", "--from", "c", "--min-count", "5",
                                 "--home", str(home.root)])
    assert r.exit_code == 0, r.output
    assert "Warning: every record of cleveland (12) was dropped" in r.output and "classification" in r.output
    assert "Warning: only one class (French)" in r.output
    r = CliRunner().invoke(app, ["build-split", "culture", "--from", "m", "--min-count", "100", "--home",
                                 str(home.root)])
    assert r.exit_code == 1
    assert "no class of m@" in r.output and "the largest, French, has 30 of 30" in r.output
    assert "try --min-count 30 or lower" in r.output

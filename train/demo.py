"""The demo's training stage: a small CNN on the demo's medium split, on the CPU."""
from __future__ import annotations


def demo_stage(home, results: dict, quick: bool = False) -> None:
    from artdata.console import console
    from artdata.train.loop import TrainArgs, main
    m = results.get("split_medium")
    if m is None:
        return
    console.rule("[bold]7. train tate-cnn on the medium split (CPU)")
    args = TrainArgs(manifest=m.ref, model="tate-cnn", epochs=3 if quick else 8, image_size=64, batch_size=32,
                     lr=0.05, workers=0, home=str(home.root), out=str(home.runs / "demo-medium-tate-cnn"))
    final = main(args)
    results["run"] = home.runs / "demo-medium-tate-cnn"
    top3 = f", top-3 {final['test_top3']:.3f}" if "test_top3" in final else ""
    console.print(f"  test top-1 {final.get('test_top1', float('nan')):.3f}{top3} -> {final['out']}")
    price = results.get("split_price")
    if price is not None and price.card.get("features", {}).get("rows"):
        out = home.runs / "demo-price-softmax"
        final = main(TrainArgs(manifest=price.ref, model="softmax", epochs=30, optimizer="adam", lr=0.01,
                               weight_decay=1e-3, batch_size=32, home=str(home.root), out=str(out)))
        results["run_softmax"] = out
        console.print(f"  softmax on the price split's metadata: test top-1 {final.get('test_top1', float('nan')):.3f} "
                      f"(5 bins) -> {out}")

#!/usr/bin/env python3
"""Checks a Graft multi-label HTML report in headless Chromium, as a person would see it.

usage: check_multilabel_report.py REPORT_DIR EVALUATE_JSON [--screenshot SHOT.png]

Loads REPORT_DIR/index.html from disk in a fresh headless Chromium profile (check_report.py's helpers) and asserts that
every image on the page loaded, that the per-label table in the page (its rows' data-* attributes) equals the per-label
figures `graft evaluate --json` printed, that the mAP card shows the JSON's mAP, that the co-occurrence table's diagonal
holds each label's images, and that the gallery of largest errors holds images with wrong labels exactly when the JSON's
exact-match accuracy is below 1.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_report import PageDom, finish, images_failures, last_json, page_dom, screenshot_failures  # noqa: E402

FIGURES = ("average_precision", "threshold", "precision", "recall", "f1")
ATTRIBUTES = {"average_precision": "data-ap", "threshold": "data-threshold", "precision": "data-precision", "recall": "data-recall", "f1": "data-f1"}


class MultiLabelDom(PageDom):
    """The per-label rows, the co-occurrence cells, the mAP card and the gallery of largest errors."""

    CELL_KEYS = ("data-a", "data-b")
    CARD = "card-map"

    def __init__(self):
        super().__init__()
        self.rows = []
        self.errors = []

    def start(self, tag, a):
        if tag == "tr" and "data-label" in a:
            self.rows.append(a)
        if tag == "div" and "data-error-file" in a:
            self.errors.append((a["data-error-file"], int(a["data-errors"])))


def per_label_failures(rows, expected):
    """Differences between the page's per-label rows and the JSON's per_label entries."""
    if [r["data-label"] for r in rows] != [e["label"] for e in expected]:
        return [f"the page's labels {[r['data-label'] for r in rows]} differ from the JSON's {[e['label'] for e in expected]}"]
    failures = []
    for row, e in zip(rows, expected):
        for key in ("support", "predicted"):
            if int(row[f"data-{key}"]) != e[key]:
                failures.append(f"{e['label']}: {key} {row[f'data-{key}']} in the page, {e[key]} in the JSON")
        for key in FIGURES:
            page = row[ATTRIBUTES[key]]
            if e[key] is None:
                if page != "":
                    failures.append(f"{e['label']}: {key} {page} in the page, none in the JSON")
            elif page == "" or abs(float(page) - e[key]) > 1e-9:
                failures.append(f"{e['label']}: {key} {page!r} in the page, {e[key]} in the JSON")
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("report_dir")
    parser.add_argument("json_path")
    parser.add_argument("--screenshot")
    args = parser.parse_args()
    url = "file://" + os.path.abspath(os.path.join(args.report_dir, "index.html"))
    expected = last_json(args.json_path)

    dom = MultiLabelDom()
    dom.feed(page_dom(url))
    failures = images_failures(dom.images_mark)
    labels = expected["per_label"]
    failures += per_label_failures(dom.rows, labels)
    if dom.card is None or abs(dom.card - expected["map"]) > 0.00005:
        failures.append(f"the page's mAP {dom.card} differs from the JSON's {expected['map']}")
    diagonal = [dom.cells.get((i, i)) for i in range(len(labels))]
    if diagonal != [e["support"] for e in labels]:
        failures.append(f"the co-occurrence diagonal {diagonal} differs from the labels' images {[e['support'] for e in labels]}")
    if len(dom.cells) != len(labels) ** 2:
        failures.append(f"the co-occurrence table has {len(dom.cells)} cells for {len(labels)} labels")
    if (len(dom.errors) > 0) != (expected["subset_accuracy"] < 1) or any(n < 1 for _, n in dom.errors):
        failures.append(f"the gallery shows {len(dom.errors)} images with errors, at exact-match accuracy {expected['subset_accuracy']}")
    if args.screenshot:
        failures += screenshot_failures(url, args.screenshot)

    finish("check_multilabel_report", failures, f"{args.report_dir}: {dom.images_mark} images loaded, the per-label table of {len(labels)} "
           f"labels matches the JSON, mAP {dom.card}, {len(dom.errors)} images in the gallery of largest errors")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks a Graft HTML report in headless Chromium, as a person would see it.

usage: check_report.py REPORT_DIR EVALUATE_JSON [--csv ROWS.csv] [--screenshot SHOT.png]

Loads REPORT_DIR/index.html from disk in a fresh headless Chromium profile and asserts that every image on
the page loaded, that the confusion-matrix table in the page equals the one in the JSON that
`graft evaluate --json` printed, that the gallery holds exactly the misclassified images, each with its heat map,
that the reliability diagram is shown with the calibration error the JSON gives, and that the `--csv` rows agree (one
per image, the misclassified ones marked false).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars"]


class PageDom(HTMLParser):
    """Collects what every Graft report page has: the body's data-images mark, the integer table cells keyed by two
    data-* attributes (CELL_KEYS), and the value of one headline card (CARD, its id)."""

    CELL_KEYS = ("data-true", "data-predicted")
    CARD = "card-ece"

    def __init__(self):
        super().__init__()
        self.images_mark = None
        self.cells = {}
        self.card = None
        self._in_card = False
        self._cell = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.images_mark = a.get("data-images")
        first, second = self.CELL_KEYS
        if tag == "td" and first in a:
            self._cell = (int(a[first]), int(a[second]))
            self._text = ""
        if tag == "div" and a.get("id") == self.CARD:
            self._in_card = True
        if tag == "div" and self._in_card and a.get("class") == "value":
            self._text = ""
        self.start(tag, a)

    def start(self, tag, a):
        """A report's own elements."""

    def handle_data(self, data):
        if self._cell is not None or self._in_card:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells[self._cell] = int(self._text.strip())
            self._cell = None
        if tag == "div" and self._in_card and self.card is None and self._text.strip():
            self.card = float(self._text.strip())
            self._in_card = False
        self.end(tag)

    def end(self, tag):
        """A report's own elements."""


class ReportDom(PageDom):
    """The confusion-matrix cells, the calibration error card and the gallery items."""

    def __init__(self):
        super().__init__()
        self.gallery = []
        self.heatmaps = 0
        self.reliability = False
        self._in_gallery = False

    @property
    def ece(self):
        return self.card

    def start(self, tag, a):
        if tag == "section":
            self._in_gallery = a.get("id") == "misclassified"
        if tag == "div" and self._in_gallery and "data-file" in a:
            self.gallery.append(a["data-file"])
        if tag == "img" and self._in_gallery and a.get("class") == "heatmap":
            self.heatmaps += 1
        if tag == "img" and a.get("src") == "reliability_diagram.png":
            self.reliability = True

    def end(self, tag):
        if tag == "section":
            self._in_gallery = False


def chromium(args):
    exe = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome") if os.path.exists(p)), None)
    if exe is None:
        sys.exit("check_report: chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


def page_dom(url):
    """The page's DOM after it loaded and its scripts ran."""
    return chromium(["--virtual-time-budget=10000", "--dump-dom", url]).stdout


def images_failures(mark):
    """What is wrong with the body's data-images mark ("loaded/total"): none when every image loaded."""
    if mark is None:
        return ["the page never finished loading (no data-images mark)"]
    loaded, total = map(int, mark.split("/"))
    return [f"only {loaded} of {total} images loaded"] if total == 0 or loaded != total else []


def screenshot_failures(url, screenshot):
    chromium(["--virtual-time-budget=10000", "--window-size=1280,2400", f"--screenshot={os.path.abspath(screenshot)}", url])
    return [] if os.path.exists(screenshot) else ["no screenshot was written"]


def last_json(path):
    """The JSON object on the last line of a command's output."""
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def finish(name, failures, summary):
    """Exits with the failures in one line, or prints the summary."""
    if failures:
        sys.exit(f"{name}: " + "; ".join(failures))
    print(f"{name}: {summary}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("report_dir")
    parser.add_argument("json_path")
    parser.add_argument("--csv")
    parser.add_argument("--screenshot")
    args = parser.parse_args()
    report_dir, json_path, screenshot = args.report_dir, args.json_path, args.screenshot
    url = "file://" + os.path.abspath(os.path.join(report_dir, "index.html"))
    expected = last_json(json_path)

    dom = ReportDom()
    dom.feed(page_dom(url))
    failures = images_failures(dom.images_mark)
    matrix = expected["confusion_matrix"]
    page = [[dom.cells.get((t, p)) for p in range(len(matrix))] for t in range(len(matrix))]
    if page != matrix:
        failures.append(f"confusion matrix in the page {page} differs from the JSON {matrix}")
    mistakes = sum(matrix[t][p] for t in range(len(matrix)) for p in range(len(matrix)) if t != p)
    if len(dom.gallery) != mistakes or len(set(dom.gallery)) != mistakes:
        failures.append(f"the gallery shows {len(dom.gallery)} images, the matrix has {mistakes} mistakes")

    if dom.heatmaps != len(dom.gallery):
        failures.append(f"{dom.heatmaps} heat maps for the gallery's {len(dom.gallery)} misclassified images")
    calibration = expected.get("calibration")
    if calibration is None or not dom.reliability:
        failures.append("no calibration in the JSON, or no reliability diagram on the page")
    elif dom.ece is None or abs(dom.ece - calibration["ece"]) > 0.0005:
        failures.append(f"the page's calibration error {dom.ece} differs from the JSON's {calibration['ece']}")

    if args.csv:
        with open(args.csv, newline="") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != expected["images"]:
            failures.append(f"the CSV has {len(rows)} rows for {expected['images']} images")
        wrong = {r["file"] for r in rows if r["correct"] == "false"}
        if wrong != set(dom.gallery):
            failures.append(f"the CSV's {len(wrong)} misclassified files differ from the gallery's {len(dom.gallery)}")

    if screenshot:
        failures += screenshot_failures(url, screenshot)

    finish("check_report", failures, f"{report_dir}: {dom.images_mark} images loaded, confusion matrix matches, "
           f"{mistakes} misclassified images in the gallery with their heat maps, calibration error {dom.ece}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A vendor is one folder (docs/connectors.md), checked on the source tree:

- every connectors/<v>/ (but common/) has its CMakeLists.txt and
  connector.cc and one line in connectors/CMakeLists.txt's
  DFM_BUILTIN_CONNECTORS, and every line there names such a folder;
- no code outside connectors/<v>/ (and the tests) includes a header of a
  vendor's folder: the rest of the engine knows connectors only through
  connectors/connector.h and the registry;
- no code in connectors/common/ or sync/ names a built-in system in a
  string (a vendor's name in a comment is an example, not a dependency).

Usage: layout_test.py [--root DIR]
"""
import argparse
import os
import re
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def source_files(folder):
    for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
        for f in files:
            if f.endswith((".h", ".cc", ".in")):
                yield os.path.join(dirpath, f)


def code_lines(path):
    """The file's lines with // comments cut off."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            yield n, line.split("//", 1)[0]


class Layout(unittest.TestCase):
    def builtin(self):
        with open(os.path.join(ROOT, "connectors", "CMakeLists.txt")) as f:
            text = f.read()
        block = re.search(r"set\(DFM_BUILTIN_CONNECTORS\n(.*?)\)", text, re.S).group(1)
        return [line.strip().strip('"').split() for line in block.splitlines() if line.strip()]

    def vendor_folders(self):
        base = os.path.join(ROOT, "connectors")
        return sorted(d for d in os.listdir(base)
                      if os.path.isdir(os.path.join(base, d)) and d != "common")

    def test_each_vendor_folder_is_one_registry_line(self):
        lines = self.builtin()
        folders = [folder for folder, _ in lines]
        self.assertEqual(sorted(folders), self.vendor_folders())
        self.assertEqual(len(folders), len(set(folders)), "one line each")
        for folder, descriptor in lines:
            for f in ("CMakeLists.txt", "connector.cc"):
                self.assertTrue(os.path.exists(os.path.join(ROOT, "connectors", folder, f)),
                                f"connectors/{folder}/{f}")
            with open(os.path.join(ROOT, "connectors", folder, "connector.cc")) as f:
                self.assertIn(f"const Connector& {descriptor}()", f.read())

    def test_the_engine_knows_connectors_only_through_the_registry(self):
        vendors = self.vendor_folders()
        include = re.compile(r'#include "connectors/(%s)/' % "|".join(vendors))
        for folder in ("actors", "app", "config", "events", "http", "projections",
                       "replay-tools", "storage", "sync", "util", "connectors/common"):
            for path in source_files(folder):
                for n, line in code_lines(path):
                    self.assertIsNone(include.search(line),
                                      f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")

    def test_the_shared_layer_and_the_rules_name_no_system(self):
        systems = [folder for folder, _ in self.builtin()]
        quoted = re.compile(r'"(%s)"' % "|".join(systems))
        # A consent channel may share a system's name ("whatsapp" is both a
        # channel and WhatsApp's connector): the channel names declared in
        # sync/consent.h are vocabulary of the rules, not a system.
        channel_name = re.compile(r'^\s*inline constexpr char k\w+\[\] = "\w+";')
        for folder in ("connectors/common", "sync"):
            for path in source_files(folder):
                for n, line in code_lines(path):
                    if path.endswith(os.path.join("sync", "consent.h")) and channel_name.match(line):
                        continue
                    self.assertIsNone(quoted.search(line),
                                      f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
        with open(os.path.join(ROOT, "connectors", "connector.h")) as f:
            for n, line in enumerate(f, 1):
                self.assertIsNone(quoted.search(line.split("//", 1)[0]), f"connector.h:{n}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=ROOT)
    args, rest = ap.parse_known_args()
    ROOT = os.path.abspath(args.root)
    unittest.main(argv=[sys.argv[0]] + rest)

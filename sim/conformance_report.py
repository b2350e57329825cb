"""The conformance kit's verdicts: one line per case on the terminal, JUnit XML for CI,
JSON for the partner's own tools (docs/conformance.md 'Output').

A Result is one presentation of a case: expected and got (reason codes, 0 = accepted),
the validator's own decision (the firmware's @@TAP object), the phone-side limit lines,
and the times (the validator's own stage times in ms, the wall time of the tap).
"""

import json
import pathlib
import xml.etree.ElementTree as ET

from sim import conformance_reasons as cr


class Result:
    def __init__(self, case, index, expected, decision, wall_s, limits, challenge=None):
        self.case = case
        self.index = index                      # presentation number within the case (1..)
        self.expected = expected
        self.decision = decision
        self.got = decision.get("reason", -1) if decision.get("answer") != 0 else 0
        self.wall_s = wall_s
        self.limits = limits
        self.challenge = challenge              # the validator's challenge the phone signed
        self.apdus = None                       # NFC: [[command hex, response hex]]
        self.ok = self.got == expected

    @property
    def name(self):
        n = self.case.name
        return n if len(self.case.expect) == 1 else "%s#%d" % (n, self.index)

    @property
    def validator_ms(self):
        return round(sum((self.decision.get("ms") or {}).values()), 1)

    def line(self, width=24):
        """PASS|FAIL, case, channel, expected, got (code and name), the validator's time."""
        return "%s  %-*s %-3s  expected %-29s got %-29s %6.1f ms" % (
            "PASS" if self.ok else "FAIL", width, self.name, self.case.channel,
            cr.label(self.expected), cr.label(self.got), self.validator_ms)

    def details(self):
        """Indented lines under the case line: limits always, the reason when it failed."""
        out = ["      limit: " + t for t in self.limits]
        if self.got == cr.READER_FAULT and not self.limits and self.ok:
            out.append("      reader   " + cr.explain(self.got))
        if not self.ok:
            out.append("      got      " + cr.explain(self.got))
            out.append("      expected " + cr.explain(self.expected))
        return out

    def to_json(self):
        return {"name": self.name, "case": self.case.name, "presentation": self.index,
                "channel": self.case.channel, "about": self.case.about,
                "expected": self.expected, "expected_label": cr.label(self.expected),
                "got": self.got, "got_label": cr.label(self.got),
                "reason_name": self.decision.get("reason_name"), "ok": self.ok,
                "validator_ms": self.validator_ms, "wall_ms": round(self.wall_s * 1000, 1),
                "limits": self.limits,
                "challenge": self.challenge.hex() if self.challenge else None,
                "apdus": self.apdus,
                "decision": self.decision}


def summary_line(results):
    bad = [r for r in results if not r.ok]
    head = "%d presentations in %d cases: " % (len(results), len({r.case.name for r in results}))
    if not bad:
        return head + "all as expected"
    return head + "%d as expected, %d NOT: %s" % (len(results) - len(bad), len(bad),
                                                  ", ".join(r.name for r in bad))


def write_json(path, results, info):
    doc = dict(info, ok=all(r.ok for r in results), summary=summary_line(results),
               results=[r.to_json() for r in results])
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def write_junit(path, results, suite="brt-conformance"):
    bad = sum(1 for r in results if not r.ok)
    total = sum(r.wall_s for r in results)
    ts = ET.Element("testsuite", name=suite, tests=str(len(results)), failures=str(bad),
                    errors="0", time="%.3f" % total)
    for r in results:
        tc = ET.SubElement(ts, "testcase", classname="%s.%s" % (suite, r.case.channel),
                           name=r.name, time="%.3f" % r.wall_s)
        if not r.ok:
            f = ET.SubElement(tc, "failure", message="expected %s, got %s" % (
                cr.label(r.expected), cr.label(r.got)))
            f.text = "\n".join(line.strip() for line in r.details())
        elif r.limits:
            ET.SubElement(tc, "system-out").text = "\n".join(r.limits)
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(bad))
    root.append(ts)
    ET.ElementTree(root).write(str(p), encoding="utf-8", xml_declaration=True)

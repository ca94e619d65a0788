"""Content policy checked when a generation job is submitted.

One generic, data-driven matcher; the rules live in a JSON file. The shipped rules are
``policy_rules.json`` next to this module; an operator replaces them entirely by pointing
``MUSICSTUDIO_POLICY_FILE`` at a file of the same format.

Rule file format (version 1)::

    {
      "version": 1,
      "term_lists": {"artists": ["Taylor Swift", "Drake"]},
      "rules": [
        {
          "code": "artist_imitation",
          "explanation": "User-facing sentence.",
          "fields": ["prompt", "title", "style_tags"],
          "all_of": [["in the style of", "sounds like"], ["@artists"]],
          "max_words_between": 4,
          "any_of": ["some phrase that is enough on its own"]
        }
      ]
    }

* ``rules`` are tried in file order; the first rule that matches decides. ``code`` (letters,
  digits, ``_ . -``) and ``explanation`` become the refusal reason ``"<code>: <explanation>"``.
  Several rules may share a code.
* A rule matches when every group of ``all_of`` has a hit, or when its ``any_of`` group has a
  hit. At least one of the two is required.
* A *group* is either a list of terms or an object
  ``{"terms": [...], "patterns": [...], "unless": [...]}``:

  - ``terms`` are words or phrases. Both the terms and the request text are normalised
    (Unicode NFKC, case-folded, accents removed, possessive ``'s`` and apostrophes dropped,
    every other non-alphanumeric run turned into one space), and a term matches only whole
    words: ``"Taylor-Swift"``, ``"taylor  swift"`` and ``"TAYLOR SWIFT's"`` all match the
    term ``taylor swift``; ``"Beyoncé"`` matches ``beyonce``; ``"taylor made"`` does not.
    A term ``"@name"`` stands for every term of ``term_lists[name]``.
  - ``patterns`` are Python regular expressions run on the normalised text (lowercase ASCII
    letters and digits for Latin text, words separated by one space; write a literal space,
    not ``\\s``). They are anchored to whole words automatically. Example, "under-18 age":
    ``"(?:[0-9]|1[0-7]) ?(?:years? ?old|yrs? ?old|y ?o)"`` matches "12-year-old" and "12yo".
  - ``unless`` lists phrases that cancel a hit of this group lying inside them (e.g. the
    term ``minor`` with ``unless: ["minor key", "in a minor"]``).
* ``max_words_between`` (optional, with ``all_of``): the hits of the groups must be close, in
  one field, with at most that many other words between them (0: adjacent). In
  ``"sing the lyrics of Hey Jude"`` the hits "lyrics" and "hey jude" have 1 word between them;
  a long title does not count against the limit. Without it, the groups may be anywhere in
  the request, even in different fields.
* ``fields`` (optional): which request fields the rule looks at, any of ``prompt``,
  ``style_tags``, ``title``, ``lyrics`` (default: all). Each field, and each style tag, is
  a separate piece of text: a phrase or a window never spans two of them.
* ``comment`` keys are allowed at the top level, in rules and in group objects, and ignored.

A malformed file raises :class:`PolicyFileError` when it is loaded, so a misconfigured
service fails at start rather than on a request.

Matching is a single pass over the words of the request: every term (and each of its word
prefixes) is in a hash table, so the cost is linear in the request length and nearly
independent of the number of terms; the few patterns are precompiled.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

__all__ = ["FIELDS", "ContentPolicy", "PolicyDecision", "PolicyFileError", "normalize_text"]

FIELDS: Final[tuple[str, ...]] = ("prompt", "style_tags", "title", "lyrics")
SHIPPED_RULES: Final = "policy_rules.json"
_VERSION: Final = 1
_CODE_RE: Final = re.compile(r"[A-Za-z0-9_.-]+")

# A hit: (segment index, first word index, word index after the last word).
_Hit = tuple[int, int, int]

_POSSESSIVE_RE: Final = re.compile(r"['\u2018\u2019\u02bc`]s\b")
_APOSTROPHE_RE: Final = re.compile(r"['\u2018\u2019\u02bc`]")
_NON_WORD_RE: Final = re.compile(r"[\W_]+")


def normalize_text(text: str) -> str:
    """Lowercase, fold accents and compatibility forms, keep words separated by one space."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).casefold()
        text = "".join(
            ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
        )
        text = unicodedata.normalize("NFC", text)
    else:
        text = text.lower()
    text = _APOSTROPHE_RE.sub("", _POSSESSIVE_RE.sub("", text))
    return _NON_WORD_RE.sub(" ", text).strip()


class PolicyFileError(ValueError):
    """The rule file cannot be read or does not follow the format."""


@dataclass(frozen=True)
class PolicyDecision:
    """A refusal: which rule matched and the sentence shown to the user."""

    code: str
    explanation: str

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.explanation}"


@dataclass(frozen=True, slots=True)
class _Rule:
    code: str
    explanation: str
    all_of: tuple[int, ...]  # group ids
    any_of: int | None  # group id
    max_between: int | None
    fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Group:
    pattern: re.Pattern[str] | None  # the group's patterns as one regex; terms are looked up


class _Compiler:
    """Validates the parsed JSON and builds the lookup tables; errors name the place."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.term_lists: dict[str, list[str]] = {}
        self.groups: list[_Group] = []
        # normalised phrase -> [(group id, is an ``unless`` phrase)]
        self.phrases: dict[str, list[tuple[int, bool]]] = {}
        self.prefixes: set[str] = set()

    def fail(self, where: str, problem: str) -> PolicyFileError:
        return PolicyFileError(f"invalid content policy file {self.source}: {where}: {problem}")

    def compile(self, data: Any) -> list[_Rule]:
        if not isinstance(data, dict):
            raise self.fail("top level", "expected a JSON object")
        self._check_keys(
            data, "top level", required={"version", "rules"}, optional={"term_lists", "comment"}
        )
        version = data["version"]
        if type(version) is not int or version != _VERSION:
            raise self.fail("version", f"expected {_VERSION}, got {version!r}")
        self._read_term_lists(data.get("term_lists", {}))
        rules = data["rules"]
        if not isinstance(rules, list):
            raise self.fail("rules", "expected a list of rule objects")
        return [self._rule(raw, f"rules[{i}]") for i, raw in enumerate(rules)]

    def _check_keys(
        self, obj: dict[str, Any], where: str, *, required: set[str], optional: set[str]
    ) -> None:
        missing = sorted(required - obj.keys())
        if missing:
            raise self.fail(where, f"missing key(s): {', '.join(missing)}")
        unknown = sorted(obj.keys() - required - optional)
        if unknown:
            allowed = ", ".join(sorted(required | optional))
            raise self.fail(where, f"unknown key(s): {', '.join(unknown)} (allowed: {allowed})")

    def _string_list(self, value: Any, where: str, *, allow_empty: bool = False) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "expected a list of strings")
        if not value and not allow_empty:
            raise self.fail(where, "the list is empty")
        return value

    def _read_term_lists(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise self.fail("term_lists", "expected an object of name -> list of terms")
        for name, terms in raw.items():
            where = f"term_lists.{name}"
            for i, term in enumerate(self._string_list(terms, where)):
                if term.startswith("@"):
                    raise self.fail(f"{where}[{i}]", "a term list cannot reference another")
            self.term_lists[name] = terms

    def _terms(self, raw: Any, where: str) -> list[str]:
        """Normalised terms with ``@name`` references expanded; duplicates removed."""
        out: dict[str, None] = {}
        for i, term in enumerate(self._string_list(raw, where)):
            if term.startswith("@"):
                name = term[1:]
                if name not in self.term_lists:
                    raise self.fail(f"{where}[{i}]", f"unknown term list {term!r}")
                expanded = [(f"term_lists.{name}", t) for t in self.term_lists[name]]
            else:
                expanded = [(f"{where}[{i}]", term)]
            for place, text in expanded:
                norm = normalize_text(text)
                if not norm:
                    raise self.fail(place, f"term {text!r} has no letters or digits")
                out[norm] = None
        return list(out)

    def _group(self, raw: Any, where: str) -> int:
        patterns: list[str] = []
        unless: list[str] = []
        if isinstance(raw, list):
            terms = self._terms(raw, where)
        elif isinstance(raw, dict):
            self._check_keys(
                raw, where, required=set(), optional={"terms", "patterns", "unless", "comment"}
            )
            terms = self._terms(raw["terms"], f"{where}.terms") if "terms" in raw else []
            if "patterns" in raw:
                patterns = self._string_list(raw["patterns"], f"{where}.patterns")
            if "unless" in raw:
                unless = self._terms(raw["unless"], f"{where}.unless")
            if not terms and not patterns:
                raise self.fail(where, "a group needs 'terms' or 'patterns'")
        else:
            raise self.fail(where, "expected a list of terms or an object with 'terms'")

        compiled: re.Pattern[str] | None = None
        if patterns:
            for i, pattern in enumerate(patterns):
                try:
                    matches_empty = re.compile(pattern).fullmatch("") is not None
                except re.error as exc:
                    raise self.fail(
                        f"{where}.patterns[{i}]", f"bad regular expression: {exc}"
                    ) from exc
                if matches_empty:
                    raise self.fail(f"{where}.patterns[{i}]", "the pattern matches empty text")
            body = "|".join(f"(?:{p})" for p in patterns)
            compiled = re.compile(rf"(?<!\w)(?:{body})(?!\w)")

        group_id = len(self.groups)
        self.groups.append(_Group(pattern=compiled))
        for phrases, is_unless in ((terms, False), (unless, True)):
            for phrase in phrases:
                self.phrases.setdefault(phrase, []).append((group_id, is_unless))
                words = phrase.split(" ")
                for n in range(1, len(words)):
                    self.prefixes.add(" ".join(words[:n]))
        return group_id

    def _rule(self, raw: Any, where: str) -> _Rule:
        if not isinstance(raw, dict):
            raise self.fail(where, "expected a rule object")
        self._check_keys(
            raw,
            where,
            required={"code", "explanation"},
            optional={"all_of", "any_of", "max_words_between", "fields", "comment"},
        )
        code, explanation = raw["code"], raw["explanation"]
        if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
            raise self.fail(f"{where}.code", "expected a non-empty string of [A-Za-z0-9_.-]")
        where = f"{where} ({code})"
        if not isinstance(explanation, str) or not explanation.strip():
            raise self.fail(f"{where}.explanation", "expected a non-empty string")
        if "all_of" not in raw and "any_of" not in raw:
            raise self.fail(where, "a rule needs 'all_of' or 'any_of'")

        all_of: tuple[int, ...] = ()
        if "all_of" in raw:
            groups = raw["all_of"]
            if not isinstance(groups, list) or not groups:
                raise self.fail(f"{where}.all_of", "expected a non-empty list of groups")
            all_of = tuple(self._group(g, f"{where}.all_of[{i}]") for i, g in enumerate(groups))
        any_of = self._group(raw["any_of"], f"{where}.any_of") if "any_of" in raw else None

        max_between: int | None = None
        if "max_words_between" in raw:
            max_between = raw["max_words_between"]
            if type(max_between) is not int or max_between < 0:
                raise self.fail(f"{where}.max_words_between", "expected an integer >= 0")
            if not all_of:
                raise self.fail(f"{where}.max_words_between", "only applies to 'all_of'")

        fields = frozenset(FIELDS)
        if "fields" in raw:
            names = self._string_list(raw["fields"], f"{where}.fields")
            unknown = sorted(set(names) - fields)
            if unknown:
                raise self.fail(
                    f"{where}.fields",
                    f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(FIELDS)})",
                )
            fields = frozenset(names)
        return _Rule(code, explanation.strip(), all_of, any_of, max_between, fields)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


class ContentPolicy:
    """Precompiled rules; :meth:`check` a request, get the first matching rule or ``None``."""

    def __init__(
        self,
        rules: Sequence[_Rule],
        groups: Sequence[_Group],
        phrases: Mapping[str, Sequence[tuple[int, bool]]],
        prefixes: set[str],
        source: str,
    ) -> None:
        self._rules = tuple(rules)
        self._phrases = {k: tuple(v) for k, v in phrases.items()}
        self._prefixes = frozenset(prefixes)
        self._pattern_groups = tuple(
            (gid, g.pattern) for gid, g in enumerate(groups) if g.pattern is not None
        )
        self.source = source

    @classmethod
    def load(cls, path: str | Path | None) -> ContentPolicy:
        """Rules from ``path``, or the shipped rules when ``path`` is ``None``."""
        if path is None:
            source = f"<shipped {SHIPPED_RULES}>"
            try:
                text = (
                    resources.files("musicstudio.services")
                    .joinpath(SHIPPED_RULES)
                    .read_text("utf-8")
                )
            except (OSError, UnicodeDecodeError) as exc:
                raise PolicyFileError(f"cannot read content policy file {source}: {exc}") from exc
        else:
            source = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PolicyFileError(f"cannot read content policy file {source}: {exc}") from exc
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            raise PolicyFileError(
                f"invalid content policy file {source}: not valid JSON: {exc}"
            ) from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>") -> ContentPolicy:
        """Rules from an already parsed document of the file format."""
        compiler = _Compiler(source)
        rules = compiler.compile(data)
        return cls(rules, compiler.groups, compiler.phrases, compiler.prefixes, source)

    @property
    def codes(self) -> tuple[str, ...]:
        """The code of each rule, in evaluation order."""
        return tuple(rule.code for rule in self._rules)

    def check(
        self,
        *,
        prompt: str,
        style_tags: Sequence[str] = (),
        title: str | None = None,
        lyrics: str | None = None,
    ) -> PolicyDecision | None:
        """The first rule (in file order) the request matches, or ``None`` if it is allowed."""
        if isinstance(style_tags, str):  # a lone tag passed by mistake: not its characters
            style_tags = (style_tags,)
        segments: list[tuple[str, str]] = []
        for field, value in (
            ("prompt", prompt),
            *(("style_tags", tag) for tag in style_tags),
            ("title", title),
            ("lyrics", lyrics),
        ):
            if value:
                norm = normalize_text(value)
                if norm:
                    segments.append((field, norm))
        if not segments or not self._rules:
            return None

        hits, unless = self._scan(segments)
        for gid in unless:
            if gid in hits:
                hits[gid] = [h for h in hits[gid] if not _inside_any(h, unless[gid])]

        seg_fields = [field for field, _ in segments]
        for rule in self._rules:
            if _rule_matches(rule, hits, seg_fields):
                return PolicyDecision(rule.code, rule.explanation)
        return None

    def _scan(
        self, segments: Sequence[tuple[str, str]]
    ) -> tuple[dict[int, list[_Hit]], dict[int, list[_Hit]]]:
        hits: dict[int, list[_Hit]] = {}
        unless: dict[int, list[_Hit]] = {}
        phrases, prefixes = self._phrases, self._prefixes
        for seg, (_, text) in enumerate(segments):
            words = text.split(" ")
            count = len(words)
            for i in range(count):
                phrase = words[i]
                j = i
                while True:
                    found = phrases.get(phrase)
                    if found is not None:
                        hit = (seg, i, j + 1)
                        for gid, is_unless in found:
                            (unless if is_unless else hits).setdefault(gid, []).append(hit)
                    j += 1
                    if j >= count or phrase not in prefixes:
                        break
                    phrase = f"{phrase} {words[j]}"
            for gid, pattern in self._pattern_groups:
                for m in pattern.finditer(text):
                    start = text.count(" ", 0, m.start())
                    end = start + m.group().count(" ") + 1
                    hits.setdefault(gid, []).append((seg, start, end))
        for group_hits in hits.values():
            group_hits.sort()
        return hits, unless


def _inside_any(hit: _Hit, spans: Sequence[_Hit]) -> bool:
    seg, start, end = hit
    return any(s == seg and s_start <= start and end <= s_end for s, s_start, s_end in spans)


def _rule_matches(rule: _Rule, hits: Mapping[int, list[_Hit]], seg_fields: list[str]) -> bool:
    every_field = len(rule.fields) == len(FIELDS)

    def group_hits(gid: int) -> list[_Hit]:
        found = hits.get(gid, [])
        if every_field or not found:
            return found
        return [h for h in found if seg_fields[h[0]] in rule.fields]

    if rule.any_of is not None and group_hits(rule.any_of):
        return True
    if not rule.all_of:
        return False
    per_group = [group_hits(gid) for gid in rule.all_of]
    if not all(per_group):
        return False
    if rule.max_between is None:
        return True
    return _close_together(per_group, rule.max_between)


def _close_together(per_group: list[list[_Hit]], max_between: int) -> bool:
    """Whether one hit of each group lies in one segment with few words between them.

    Each hit in turn is taken as the leftmost; every other group contributes its nearest hit
    starting at or after it (exact for two groups, a close approximation for more). The
    words between are the words of the span that no chosen hit covers.
    """
    for first in per_group:
        for seg, start, end in first:
            chosen = [(start, end)]
            for other in per_group:
                i = bisect_left(other, (seg, start, 0))
                if i == len(other) or other[i][0] != seg:
                    break
                chosen.append((other[i][1], other[i][2]))
            else:
                if _uncovered_words(chosen) <= max_between:
                    return True
    return False


def _uncovered_words(spans: list[tuple[int, int]]) -> int:
    spans.sort()
    uncovered, reach = 0, spans[0][1]
    for s_start, s_end in spans[1:]:
        if s_start > reach:
            uncovered += s_start - reach
        reach = max(reach, s_end)
    return uncovered

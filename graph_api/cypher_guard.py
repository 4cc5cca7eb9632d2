"""Analysts' Cypher: parse, don't filter. A query runs only if a real openCypher parser accepts it and
every clause and function in its tree is on an allowlist; what the database then runs is the query
re-written from that tree (`check` returns it), never the caller's text.

Why a parser. The filter this replaces blanked strings before comments with regular expressions, so
an apostrophe inside a comment hid the rest of the query: `/* ' */ LOAD FROM "/etc/passwd" … // ' */`
read a file on the server; the same trick ran COPY … TO, CALL timeout=…, INSTALL and CHECKPOINT.
Here the ANTLR openCypher grammar (`antlr4-cypher`, entry rule `script`) lexes and parses the whole
text; any lexer or parser error refuses the query. Ladybug's own clauses (LOAD FROM, COPY, INSTALL,
ATTACH, CHECKPOINT, EXPORT/IMPORT DATABASE, USE, `CALL x=…`) are not openCypher: they do not parse.

What is allowed (an allowlist: a rule of the grammar not listed in `_ALLOWED_RULES` is refused):
- one statement (a trailing `;` is dropped) of reading clauses: MATCH, OPTIONAL MATCH, WHERE, WITH,
  UNWIND, RETURN with DISTINCT / ORDER BY / SKIP / LIMIT, UNION [ALL], CASE, list predicates
  (all/any/none/single), list and pattern comprehensions, EXISTS { … } subqueries;
- no updating clause (CREATE, MERGE, SET, DELETE, REMOVE) and no CALL, standalone or in a query: no
  saved query needs a procedure, and Ladybug's catalogue procedures are reachable through the API's
  own endpoints;
- functions in `ALLOWED_FUNCTIONS` only, by plain (not namespaced) name, case-insensitively. Refused
  families, and why:
  * value conversions and serialisers (`string`, `to_string`, `cast`, `to_*`, `json`, `struct_*`,
    `map_*`, `properties`, `keys`, `list_to_string`, `concat`): they turn a node into a value whose
    parts the masking of answers cannot see, or fetch a property by computed name
    (`struct_extract(p, 'id_' + 'number')`);
  * hashes (`md5`, `sha256`, `hash`): a hash of a sensitive value leaks equality across rows;
  * files, settings, catalogue and side effects (`read_csv`, `read_parquet`, `copy_*`,
    `current_setting`, `show_*`, `table_info`, `storage_info`, `nextval`, `setseed`, `error`, …);
  * temporal constructors and arithmetic (`date`, `timestamp`, `interval`, `duration`, `make_date`,
    `date_trunc`, `last_day`, `current_date`, …): `RETURN date('0001-01-01') - interval('1 day')`
    and `d - 999999999` on a DATE kill the process running Ladybug (SIGSEGV). For the same reason
    `+` and `-` are refused when an operand may be a date or timestamp (a temporal property of the
    graph schema, or a variable bound to one, or `min`/`max`/`coalesce`/`collect`/`head`/`last` of
    one); compare dates, or take `date_part('year', d)`, instead;
  * unbounded work (`repeat`, `lpad`, `rpad`, `regexp_*`, `levenshtein`, `list_*`): `range` is
    allowed only with integer-literal bounds of at most `RANGE_LIMIT` values;
- indexes and slices only by integer literal: `n[$k]`, `n['a' + 'b']`, `n[x]` are properties by
  computed key, which no name check could see;
- parameters named by plain ASCII words or numbers (Ladybug reads `$`a`` as a parameter named
  "`a`"); at most `MAX_NESTING` levels of brackets (the Python parser recurses deeply per level) and
  `MAX_QUERY_CHARS` characters; no NUL anywhere.
Grammar quirks of antlr4-cypher 0.1.2 worked around here: it allows no space before UNION (spaces
there are moved off the parser's channel), reads integers as names (checked as numbers), and cannot
parse Ladybug's `EXISTS { MATCH … }` (only `EXISTS { MATCH … RETURN … }`, which Ladybug refuses).

What runs is what was checked. The canonical text is re-emitted from the tree's tokens: comments
dropped, keywords upper case, whitespace a single space, string literals decoded as the grammar
defines and re-encoded in single quotes with only `\\\\` and `\\'` escaped (control characters are
refused: they cannot be written back unambiguously), names that are not plain ASCII words or that
collide with a keyword of Ladybug or Neo4j in backticks (so `a\\u3000b`, whitespace to Ladybug but a
letter to the grammar, cannot split into two words), function names from the allowlist, numbers only
in plain decimal forms both backends read alike. The canonical text must parse back to itself; else
the query is refused.

API: `check(query) -> str` (the canonical text; `CypherRefused` names what is refused), and
`inspect(query) -> CheckedQuery` (the text, and the person IDs named inside string literals, for
the access log). Results are cached by query text; one parse at a time (the ANTLR runtime's caches
are shared), SLL prediction first and full LL only when SLL gives up.

For roles that may not see sensitive values (ontology `ckg:sensitive`), `check(query, False)` also
refuses queries naming a sensitive property (as a property, map key or inside a string literal) or a
statement's raw value (`.value`, `.written_value`); `mask_rows` masks every node and map in the
answer by its keys. This is defence in depth: the analyst projection is the wall for sensitive data.

Tests: tests/test_cypher_parser.py (every known attack, the write corpus, the saved queries) and
tests/test_cypher_fuzz.py (a grammar-based hypothesis fuzzer, also run against a real Ladybug graph).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from antlr4 import BailErrorStrategy, CommonTokenStream, InputStream, Token
from antlr4.atn.PredictionMode import PredictionMode
from antlr4.error.ErrorStrategy import DefaultErrorStrategy
from antlr4.error.Errors import ParseCancellationException
from antlr4.error.ErrorListener import ErrorListener
from antlr4.tree.Tree import TerminalNode
from antlr4_cypher import CypherLexer, CypherParser

from ontology.masking import mask
from ontology.model import load_ontology


class CypherRefused(ValueError):
    pass


MAX_QUERY_CHARS = 20_000
MAX_NESTING = 12
RANGE_LIMIT = 10_000  # range() of literals only, at most this many values (the row cap is smaller)
PERSON_ID = re.compile(r"P\d{8,}")
_RAW_STATEMENT_VALUES = ("value", "written_value")

ALLOWED_FUNCTIONS = frozenset({
    # aggregates
    "count", "collect", "min", "max", "sum", "avg",
    # nulls, strings
    "coalesce", "lower", "upper", "tolower", "toupper", "trim", "ltrim", "rtrim", "substring", "left",
    "right", "starts_with", "ends_with", "size",
    # numbers
    "abs", "round", "floor", "ceil", "sign",
    # graph structure (labels, internal ids, paths)
    "labels", "label", "type", "id", "nodes", "relationships", "rels", "length", "head", "last",
    # dates: a part of a date (no arithmetic), and range with literal bounds
    "date_part", "range",
})
# Functions whose result may be their argument (so a date stays a date): see _temporal.
_PASSES_VALUES_THROUGH = frozenset({"min", "max", "coalesce", "collect", "head", "last"})

# Grammar rules a reading query is made of. Everything else (standaloneCall, queryCallSt,
# updatingStatement, createSt, mergeSt, setSt, deleteSt, removeSt, yieldItems, …) is refused.
_ALLOWED_RULES = frozenset({
    "script", "query", "regularQuery", "singleQuery", "singlePartQ", "multiPartQ", "unionSt",
    "readingStatement", "matchSt", "unwindSt", "withSt", "returnSt", "where", "patternWhere",
    "projectionBody", "projectionItems", "projectionItem", "orderSt", "orderItem", "skipSt", "limitSt",
    "pattern", "patternPart", "patternElem", "patternElemChain", "nodePattern", "relationshipPattern",
    "relationDetail", "relationshipTypes", "rangeLit", "properties", "nodeLabels",
    "expression", "xorExpression", "andExpression", "notExpression", "comparisonExpression",
    "comparisonSigns", "addSubExpression", "multDivExpression", "powerExpression",
    "unaryAddSubExpression", "atomicExpression", "listExpression", "stringExpression", "stringExpPrefix",
    "nullExpression", "propertyOrLabelExpression", "propertyExpression", "atom", "lhs",
    "parenthesizedExpression", "functionInvocation", "invocationName", "expressionChain", "countAll",
    "caseExpression", "filterWith", "filterExpression", "listComprehension", "patternComprehension",
    "relationshipsChainPattern", "subqueryExist", "parameter", "literal", "boolLit", "numLit",
    "stringLit", "charLit", "listLit", "mapLit", "mapPair", "name", "symbol", "reservedWord",
})
_REFUSED_RULES = {  # rule -> what the refusal names
    "standaloneCall": "CALL", "queryCallSt": "CALL", "yieldItems": "YIELD", "yieldItem": "YIELD",
    "updatingStatement": "an updating clause", "createSt": "CREATE", "mergeSt": "MERGE",
    "mergeAction": "MERGE … ON", "setSt": "SET", "setItem": "SET", "deleteSt": "DELETE",
    "removeSt": "REMOVE", "removeItem": "REMOVE", "parenExpressionChain": "CALL",
}

_P = CypherParser
_STRING_TOKENS = {_P.STRING_LITERAL, _P.CHAR_LITERAL}
_NAME_TOKENS = {_P.ID, _P.ESC_LITERAL, _P.COUNT, _P.FILTER, _P.EXTRACT, _P.ANY, _P.NONE, _P.SINGLE}
_KEYWORD_TOKENS = set(range(_P.CALL, _P.DROP + 1))
_OPENING = {_P.LPAREN, _P.LBRACK, _P.LBRACE, _P.CASE}
_CLOSING = {_P.RPAREN, _P.RBRACK, _P.RBRACE, _P.END}
_KEYWORD_TEXT = {_P.NULL_W: "NULL", _P.SKIP_W: "SKIP"}
# Names written bare in the canonical text: plain ASCII words that are no keyword of the grammar,
# Ladybug or Neo4j. Every other name is written in backticks.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = frozenset(
    {CypherLexer.symbolicNames[t].removesuffix("_W") for t in _KEYWORD_TOKENS} | set("""
    ACYCLIC ALTER ATTACH BEGIN CAST CHECKPOINT COLUMN COMMENT COMMIT COPY CSV CYCLE DATABASE DBTYPE
    DECIMAL DEFAULT DETACH EXPLAIN EXPORT EXTENSION FOREACH FROM FORCE GLOB GRAPH GROUP HEADERS HINT IF
    IMPORT INCREMENT INSTALL INTERVAL JOIN KEY LOAD LOGICAL MACRO MAP MAXVALUE MINVALUE NO NODE
    OPTIONS PASSWORD PERIODIC PRIMARY PROFILE PROJECT READ REL RENAME ROLE ROLLBACK SEQUENCE SHORTEST
    SHOW SKIP START STRUCT TABLE TERMINATE TO TRAIL TRANSACTION TRANSACTIONS TYPE UNINSTALL UPDATE USE
    USER USING WRITE WSHORTEST YIELD""".split()))
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(?:[0-9]+\.[0-9]+|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|-?[0-9]+[eE][+-]?[0-9]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'", "\\": "\\"}
_ESCAPE = re.compile(r"\\(?:u+([0-9a-fA-F]{4})|([0-3]?[0-7]?[0-7])|(.))", re.S)


@dataclass(frozen=True)
class CheckedQuery:
    text: str                      # the canonical query: send this, not the caller's text
    persons: frozenset[str]        # person IDs (P + 8 digits or more) named inside string literals
    properties: frozenset[str]     # property names and map keys the query names (lower case)
    strings: tuple[str, ...]       # every string literal, decoded


def check(query: str, sees_sensitive: bool = True) -> str:
    """The canonical text of an allowed query; raises CypherRefused naming what is not allowed.
    `sees_sensitive=False` (roles that may not see sensitive values) also refuses naming them."""
    return inspect(query, sees_sensitive).text


def inspect(query: str, sees_sensitive: bool = True) -> CheckedQuery:
    """`check`, with the person IDs the query's text names (for the access log)."""
    if not isinstance(query, str):
        raise CypherRefused("a query is a string")
    checked = _checked(query)
    if not sees_sensitive:
        _refuse_sensitive(checked)
    return checked


def persons_named(query: str) -> frozenset[str]:
    """Person IDs named inside the string literals of an allowed query."""
    return inspect(query).persons


# --- parsing -------------------------------------------------------------------------------------

class _RaiseOnError(ErrorListener):
    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):  # noqa: N802, N803
        raise CypherRefused(f"not a single read-only openCypher query: syntax error at line {line}:{column}: {msg}")


_RAISE = _RaiseOnError()
# The ANTLR Python runtime shares its prediction caches between parser instances and is not
# documented as thread-safe: one parse at a time (a parse takes milliseconds; answers are cached).
_PARSING = threading.Lock()


def _parse(text: str):
    lexer = CypherLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_RAISE)
    tokens = CommonTokenStream(lexer)
    tokens.fill()
    _refuse_by_tokens(tokens.tokens)
    for token, following in zip(tokens.tokens, tokens.tokens[1:]):
        # The grammar (antlr4-cypher 0.1.2) allows no space before UNION; a space is no token of
        # the query, so it is moved off the parser's channel (the canonical text writes it back).
        if token.type == _P.SP and following.type == _P.UNION:
            token.channel = Token.HIDDEN_CHANNEL
    # Two stages, as ANTLR recommends: the fast SLL prediction, which gives up at the first doubt;
    # then full LL, which reports the error (or parses what SLL could not decide).
    parser = CypherParser(tokens)
    parser.removeErrorListeners()
    parser._interp.predictionMode = PredictionMode.SLL
    parser._errHandler = BailErrorStrategy()
    try:
        return parser.script()
    except ParseCancellationException:
        tokens.seek(0)
        parser.reset()
    parser.addErrorListener(_RAISE)
    parser._interp.predictionMode = PredictionMode.LL
    parser._errHandler = DefaultErrorStrategy()
    tree = parser.script()
    if parser.getNumberOfSyntaxErrors():
        raise CypherRefused("not a single read-only openCypher query: syntax error")
    return tree


def _refuse_by_tokens(tokens) -> None:
    if any(t.channel != Token.DEFAULT_CHANNEL and t.type != _P.SP for t in tokens):
        raise CypherRefused("not a single read-only openCypher query: unexpected hidden tokens")
    code = [t for t in tokens if t.channel == 0 and t.type not in (_P.SP, _P.EOF)]
    if any(t.type == _P.SEMI for t in code[:-1]):
        raise CypherRefused("one statement per request: a `;` is followed by more")
    # The parser recurses about forty Python frames per bracket: refuse deep nesting before it does.
    depth = deepest = 0
    for t in code:
        depth += (t.type in _OPENING) - (t.type in _CLOSING)
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        raise CypherRefused(f"the query is nested too deeply (at most {MAX_NESTING} levels of brackets)")


@lru_cache(maxsize=256)
def _checked(query: str) -> CheckedQuery:
    if len(query) > MAX_QUERY_CHARS:
        raise CypherRefused(f"a query has at most {MAX_QUERY_CHARS} characters")
    if "\x00" in query:
        raise CypherRefused("a query cannot contain NUL characters")
    first = _walk(query)
    again = _walk(first.text)  # the canonical text must parse back to itself: what runs is what was checked
    if again != first:
        raise CypherRefused("the query cannot be re-written unambiguously")
    return first


def _walk(text: str) -> CheckedQuery:
    try:
        with _PARSING:
            tree = _parse(text)
            walker = _Walker()
            walker.visit(tree)
            walker.refuse_temporal_arithmetic()
    except RecursionError:
        raise CypherRefused("the query is nested too deeply") from None
    return CheckedQuery(walker.canonical(), frozenset(walker.persons), frozenset(walker.properties),
                        tuple(walker.strings))


# --- the tree walk: allowlist and canonical text ---------------------------------------------------

def _rule(ctx) -> str:
    return CypherParser.ruleNames[ctx.getRuleIndex()]


def _children(ctx) -> list:
    return list(ctx.getChildren()) if ctx.getChildCount() else []


_SPACE = object()


class _Walker:
    def __init__(self) -> None:
        self.out: list[Any] = []
        self.persons: set[str] = set()
        self.properties: set[str] = set()
        self.strings: list[str] = []
        self.bindings: list[tuple[str, Any]] = []   # (variable, the expression bound to it)
        self.additions: list[Any] = []              # addSubExpression contexts with + or -
        self.last_token = -1

    # Rules --------------------------------------------------------------------------------------
    def visit(self, ctx) -> None:
        if isinstance(ctx, TerminalNode):
            self.terminal(ctx)
            return
        rule = _rule(ctx)
        if rule in _REFUSED_RULES:
            what = ctx.start.text.upper() if ctx.start.type in _KEYWORD_TOKENS else _REFUSED_RULES[rule]
            raise CypherRefused(f"read-only: {what} is not allowed "
                                "(only MATCH, OPTIONAL MATCH, WHERE, WITH, UNWIND, RETURN, UNION)")
        if rule not in _ALLOWED_RULES:
            raise CypherRefused(f"the construct {rule!r} is not allowed")
        handler = getattr(self, f"rule_{rule}", None)
        if handler is not None:
            handler(ctx)
        else:
            self.children(ctx)

    def children(self, ctx) -> None:
        for child in _children(ctx):
            self.visit(child)

    def rule_functionInvocation(self, ctx) -> None:  # noqa: N802
        parts = [c for c in _children(ctx.invocationName()) if not isinstance(c, TerminalNode)]
        raw = ".".join(_name_of(p.getChild(0)) for p in parts)
        name = raw.lower() if raw.isascii() else raw
        if len(parts) != 1 or name not in ALLOWED_FUNCTIONS:
            raise CypherRefused(f"function {raw}() is not allowed; allowed: {', '.join(sorted(ALLOWED_FUNCTIONS))}")
        if name == "range":
            _refuse_unbounded_range(ctx)
        self.emit(ctx.invocationName(), name)
        for child in _children(ctx)[1:]:
            self.visit(child)

    def rule_listExpression(self, ctx) -> None:  # noqa: N802
        if ctx.LBRACK() is not None:
            for index in ctx.expression():
                if not _INTEGER.fullmatch(_compact(index)):
                    raise CypherRefused("indexes and slices take integer literals only: a property by computed "
                                        f"key (n[$k], n['a' + 'b']) is not allowed: [{_compact(index)}]")
        self.children(ctx)

    def rule_propertyExpression(self, ctx) -> None:  # noqa: N802
        for name in ctx.name():
            self.properties.add(_name_of(name.getChild(0)).lower())
        self.children(ctx)

    def rule_mapPair(self, ctx) -> None:  # noqa: N802
        self.properties.add(_name_of(ctx.name().getChild(0)).lower())
        self.children(ctx)

    def rule_projectionItem(self, ctx) -> None:  # noqa: N802
        if ctx.symbol() is not None:
            self.bindings.append((_name_of(ctx.symbol().getChild(0)).lower(), ctx.expression()))
        self.children(ctx)

    def rule_unwindSt(self, ctx) -> None:  # noqa: N802
        self.bindings.append((_name_of(ctx.symbol().getChild(0)).lower(), ctx.expression()))
        self.children(ctx)

    def rule_filterExpression(self, ctx) -> None:  # noqa: N802
        self.bindings.append((_name_of(ctx.symbol().getChild(0)).lower(), ctx.expression()))
        self.children(ctx)

    def rule_addSubExpression(self, ctx) -> None:  # noqa: N802
        if ctx.getChildCount() > 1:
            self.additions.append(ctx)
        self.children(ctx)

    def rule_symbol(self, ctx) -> None:
        token = ctx.getChild(0).symbol
        if token.type in (_P.ID, _P.Integer) and token.text[0].isdigit():  # integers, to the grammar
            if not _INTEGER.fullmatch(token.text):
                raise CypherRefused(f"not a number the database reads alike: {token.text!r}")
            self.emit(ctx, token.text)
        else:
            self.emit(ctx, _write_name(_name_of(token)))

    def rule_reservedWord(self, ctx) -> None:  # noqa: N802
        self.emit(ctx, _write_name(ctx.getChild(0).getText()))

    def rule_numLit(self, ctx) -> None:  # noqa: N802
        text = ctx.getText()
        if not (_INTEGER.fullmatch(text) or _DECIMAL.fullmatch(text)):
            raise CypherRefused(f"not a number the database reads alike: {text!r}")
        self.emit(ctx, text)

    def rule_stringLit(self, ctx) -> None:  # noqa: N802
        self.string(ctx)

    def rule_charLit(self, ctx) -> None:  # noqa: N802
        self.string(ctx)

    def rule_parameter(self, ctx) -> None:
        # Ladybug reads `$`a`` as a parameter named "`a`": parameters are plain words or numbers.
        name = _compact(ctx)[1:]
        if not (re.fullmatch(r"[0-9]+", name) or _PLAIN_NAME.fullmatch(name)):
            raise CypherRefused(f"a parameter is named by a plain ASCII word or a number: ${name}")
        self.emit(ctx, "$" + name)

    # Tokens -------------------------------------------------------------------------------------
    def emit(self, ctx, text: Any) -> None:
        """The canonical text of a rule's (or a token's) tokens."""
        first, last = (ctx.symbol, ctx.symbol) if isinstance(ctx, TerminalNode) else (ctx.start, ctx.stop)
        if first.tokenIndex > self.last_token + 1:  # tokens off the parser's channel: a space
            self.out.append(_SPACE)
        self.last_token = last.tokenIndex
        self.out.append(text)

    def terminal(self, node) -> None:
        token = node.symbol
        if token.type == _P.SP:
            self.emit(node, _SPACE)
        elif token.type in (_P.EOF, _P.SEMI):
            return
        elif token.type in _KEYWORD_TOKENS:
            self.emit(node, _KEYWORD_TEXT.get(token.type, token.text.upper()))
        elif token.type in (_P.DIGIT, _P.Integer, _P.FLOAT):  # e.g. the bounds of a variable length
            if not _INTEGER.fullmatch(token.text):
                raise CypherRefused(f"not an integer the database reads alike: {token.text!r}")
            self.emit(node, token.text)
        elif token.type in _STRING_TOKENS or token.type in _NAME_TOKENS:
            raise CypherRefused(f"unexpected {token.text!r} at line {token.line}:{token.column}")
        else:
            self.emit(node, token.text)

    def string(self, ctx) -> None:
        value = _decode_string(ctx.getChild(0).symbol.text)
        self.strings.append(value)
        self.persons.update(PERSON_ID.findall(value))
        self.emit(ctx, "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'")

    # Results ------------------------------------------------------------------------------------
    def canonical(self) -> str:
        pieces: list[str] = []
        space = False
        for piece in self.out:
            if piece is _SPACE:
                space = bool(pieces)
                continue
            if pieces and (space or _glue_changes_meaning(pieces[-1], piece)):
                pieces.append(" ")
            pieces.append(piece)
            space = False
        return "".join(pieces)

    def refuse_temporal_arithmetic(self) -> None:
        temporal_properties = _temporal_properties()
        tainted: set[str] = set()
        changed = True
        while changed:  # variables bound to dates, and to variables bound to dates, ...
            changed = False
            for variable, expression in self.bindings:
                if variable not in tainted and _temporal(expression, temporal_properties, tainted):
                    tainted.add(variable)
                    changed = True
        for ctx in self.additions:
            operands = [c for c in _children(ctx) if not isinstance(c, TerminalNode)]
            for operand in operands:
                if _temporal(operand, temporal_properties, tainted):
                    raise CypherRefused(
                        f"date arithmetic is not allowed ({_compact(operand)} may be a date: Ladybug crashes on "
                        "dates out of range); compare dates, or use date_part('year', d)")


def _name_of(token_or_node) -> str:
    text = token_or_node.getText() if not hasattr(token_or_node, "type") else token_or_node.text
    if text.startswith("`"):
        text = text[1:-1]
        if not text:
            raise CypherRefused("an empty `` name is not allowed")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise CypherRefused(f"control characters are not allowed in names: {text!r}")
    return text


def _write_name(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name) and name.upper() not in _KEYWORDS:
        return name
    return f"`{name}`"


def _glue_changes_meaning(before: str, after: str) -> bool:
    """Two tokens written without a space between must not read as one word (a name the canonical
    text writes bare where the caller wrote backticks), nor as a comment (or `--`)."""
    def wordy(ch: str) -> bool:
        return ch.isalnum() or ch in "_`'\""
    return (wordy(before[-1]) and wordy(after[0])) or (before[-1] + after[0]) in ("//", "/*", "*/", "--")


def _decode_string(literal: str) -> str:
    """A string literal as the grammar defines it: quotes stripped, escapes decoded."""
    body = literal[1:-1]

    def unescape(m: re.Match) -> str:
        if m.group(1):
            return chr(int(m.group(1), 16))
        if m.group(2):
            return chr(int(m.group(2), 8))
        if m.group(3) in _ESCAPES:
            return _ESCAPES[m.group(3)]
        raise CypherRefused(f"unknown escape \\{m.group(3)} in {literal!r}")

    value = _ESCAPE.sub(unescape, body)
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise CypherRefused(f"control characters are not allowed in string literals: {literal!r}")
    return value


def _compact(ctx) -> str:
    """An expression's text without spaces or comments (tokens of the default channel only)."""
    return "".join(t.getText() for t in _leaves(ctx) if t.symbol.type not in (_P.SP, _P.EOF))


def _leaves(ctx):
    if isinstance(ctx, TerminalNode):
        yield ctx
        return
    for child in _children(ctx):
        yield from _leaves(child)


def _refuse_unbounded_range(ctx) -> None:
    chain = ctx.expressionChain()
    args = [_compact(e) for e in chain.expression()] if chain is not None else []
    if len(args) not in (2, 3) or not all(_INTEGER.fullmatch(a) for a in args):
        raise CypherRefused("range() takes integer literals only: range(1, 10) or range(1, 10, 2)")
    low, high, step = int(args[0]), int(args[1]), int(args[2]) if len(args) == 3 else 1
    if step == 0 or (high - low) // step + 1 > RANGE_LIMIT:
        raise CypherRefused(f"range() yields at most {RANGE_LIMIT} values, with a step other than 0")


def _temporal(ctx, temporal_properties: frozenset[str], tainted: set[str]) -> bool:
    """Whether an expression may be a date or timestamp (conservative: any part of it may be)."""
    if isinstance(ctx, TerminalNode):
        return False
    rule = _rule(ctx)
    if rule == "functionInvocation":
        name = _compact(ctx.invocationName()).strip("`").lower()
        if name not in _PASSES_VALUES_THROUGH:
            return False
    elif rule == "propertyExpression":
        if any(_name_of(n.getChild(0)).lower() in temporal_properties for n in ctx.name()):
            return True
    elif rule == "atom" and ctx.symbol() is not None:
        return _name_of(ctx.symbol().getChild(0)).lower() in tainted
    elif rule in ("countAll", "comparisonExpression") and ctx.getChildCount() > 1:
        return False
    return any(_temporal(c, temporal_properties, tainted) for c in _children(ctx))


@lru_cache(maxsize=1)
def _temporal_properties() -> frozenset[str]:
    from ontology.schema import graph_schema

    schema = graph_schema()
    tables = [*schema.nodes.values(), *schema.rels.values()]
    return frozenset(c.name.lower() for t in tables for c in t.columns if c.type in ("date", "timestamp"))


# --- sensitive values (roles that may not see them) ------------------------------------------------

def _sensitive_properties() -> list[str]:
    return sorted(p.name for p in load_ontology().properties.values() if p.sensitive)


def _refuse_sensitive(checked: CheckedQuery) -> None:
    sensitive = _sensitive_properties()
    named = [p for p in sensitive if p in checked.properties
             or any(re.search(rf"\b{p}\b", s.lower()) for s in checked.strings)]
    if named:
        raise CypherRefused(f"sensitive properties are not available to this role: {', '.join(named)}")
    if checked.properties & set(_RAW_STATEMENT_VALUES):
        raise CypherRefused("statements' raw values are not available to this role; use GET /lineage")


def mask_rows(rows: list[dict[str, Any]], sees_sensitive: bool) -> tuple[list[dict[str, Any]], bool]:
    """Masks every sensitive value inside nodes and maps (by key; statements by their property)."""
    if sees_sensitive:
        return rows, False
    sensitive = set(_sensitive_properties())
    masked = False

    def walk(value: Any) -> Any:
        nonlocal masked
        if isinstance(value, dict):
            stated = value.get("stated_property")
            out = {}
            for k, v in value.items():
                if v is not None and (k in sensitive or (stated in sensitive and k in _RAW_STATEMENT_VALUES)):
                    out[k], masked = mask(stated if k in _RAW_STATEMENT_VALUES else k, v), True
                else:
                    out[k] = walk(v)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return [walk(r) for r in rows], masked

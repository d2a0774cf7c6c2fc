"""Read the Terraform files (single source of truth) with python-hcl2 and resolve the expressions we need.

python-hcl2 (8.x) keeps string quotes and returns expressions as "${...}" text, so a small HCL expression
evaluator lives here: literals, templates with ${} interpolation, heredocs, objects, tuples, var.*, local.*,
resource/data references and a few functions (jsonencode, jsondecode, join, format, lower, upper, concat, merge,
tostring, tonumber, length, lookup, coalesce, replace, trimsuffix, trimprefix). Anything else -> TerraformError naming it.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import hcl2

from .aws import ACCOUNT
from .errors import TerraformError

_META = ("__is_block__", "__comments__", "__start_line__", "__end_line__", "__inline_comments__")


def _unquote_key(k: str) -> str:
    return k[1:-1] if len(k) >= 2 and k[0] == k[-1] == '"' else k


def _strip_meta(obj):
    if isinstance(obj, dict):
        return {_unquote_key(k): _strip_meta(v) for k, v in obj.items() if k not in _META}
    if isinstance(obj, list):
        return [_strip_meta(v) for v in obj]
    return obj


def load_hcl(path: Path) -> dict:
    try:
        with open(path) as fh:
            return _strip_meta(hcl2.load(fh))
    except Exception as exc:
        raise TerraformError(f"{path}: cannot parse HCL: {exc}") from exc


# ------------------------------------------------------------------ expression parser
class _Parser:
    def __init__(self, text: str, where: str):
        self.s, self.i, self.where = text, 0, where

    def err(self, msg):
        raise TerraformError(f"{self.where}: {msg} in expression {self.s!r} (at {self.i})")

    def ws(self):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r\n,":  # commas/newlines separate object and tuple items alike
                self.i += 1
            elif self.s.startswith("#", self.i) or self.s.startswith("//", self.i):
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def peek(self):
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch):
        if self.peek() != ch:
            self.err(f"expected {ch!r}")
        self.i += 1

    def parse(self):
        v = self.expr()
        self.ws()
        if self.i != len(self.s):
            self.err("unsupported syntax (operators and conditionals are not evaluated locally)")
        return v

    def expr(self):
        cond = self.binary(0)
        if self.peek() == "?":
            self.i += 1
            a = self.expr()
            self.expect(":")
            b = self.expr()
            return ("cond", cond, a, b)
        return cond

    _OPS = [("||",), ("&&",), ("==", "!="), (">=", "<=", ">", "<"), ("+", "-"), ("*", "/", "%")]

    def binary(self, level):
        if level == len(self._OPS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            self.ws()
            op = next((o for o in self._OPS[level] if self.s.startswith(o, self.i)), None)
            if op is None or (op in ("-",) and level == 4 and False):
                return left
            if op in (">", "<") and self.s.startswith(op + "=", self.i):
                op = op + "="
            self.i += len(op)
            left = ("op", op, left, self.binary(level + 1))

    def unary(self):
        if self.peek() == "!":
            self.i += 1
            return ("not", self.unary())
        if self.peek() == "(":
            self.i += 1
            v = self.expr()
            self.expect(")")
            return v
        return self.primary()

    def primary(self):
        c = self.peek()
        if c == '"':
            return ("tmpl", self.string())
        if c == "<" and self.s.startswith("<<", self.i):
            return ("tmpl", self.heredoc())
        if c == "{":
            return self.obj()
        if c == "[":
            self.i += 1
            items = []
            while self.peek() != "]":
                if not self.peek():
                    self.err("unterminated tuple")
                items.append(self.expr())
            self.i += 1
            return ("list", items)
        m = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            t = m.group(0)
            return ("lit", float(t) if any(x in t for x in ".eE") else int(t))
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*").match(self.s, self.i)
        if not m:
            self.err("unexpected character")
        name = m.group(0)
        self.i = m.end()
        if name in ("true", "false"):
            return ("lit", name == "true")
        if name == "null":
            return ("lit", None)
        if self.peek() == "(":
            self.i += 1
            args = []
            while self.peek() != ")":
                if not self.peek():
                    self.err("unterminated call")
                args.append(self.expr())
            self.i += 1
            return ("call", name, args)
        parts = [name]
        while self.i < len(self.s):
            if self.s[self.i] == ".":
                m = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*|\*|\d+)").match(self.s, self.i)
                if not m:
                    break
                parts.append(m.group(1))
                self.i = m.end()
            elif self.s[self.i] == "[":
                self.i += 1
                parts.append(("idx", self.expr()))
                self.expect("]")
            else:
                break
        return ("ref", parts)

    def obj(self):
        self.expect("{")
        items = []
        while self.peek() != "}":
            if not self.peek():
                self.err("unterminated object")
            if self.peek() == '"':
                key = ("tmpl", self.string())
            elif self.peek() == "(":
                self.i += 1
                key = self.expr()
                self.expect(")")
            else:
                m = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*").match(self.s, self.i)
                if not m:
                    self.err("bad object key")
                key = ("lit", m.group(0))
                self.i = m.end()
            c = self.peek()
            if c not in ("=", ":"):
                self.err("expected '=' or ':' after object key")
            self.i += 1
            items.append((key, self.expr()))
        self.i += 1
        return ("obj", items)

    def string(self):
        self.i += 1  # opening quote
        parts, buf = [], []
        while True:
            if self.i >= len(self.s):
                self.err("unterminated string")
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                break
            if c == "\\":
                nxt = self.s[self.i + 1]
                buf.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}.get(nxt, "\\" + nxt))
                self.i += 2
                continue
            if self.s.startswith("$${", self.i):
                buf.append("${")
                self.i += 3
                continue
            if self.s.startswith("${", self.i):
                if buf:
                    parts.append(("lit", "".join(buf)))
                    buf = []
                self.i += 2
                parts.append(self.expr())
                self.expect("}")
                continue
            buf.append(c)
            self.i += 1
        if buf:
            parts.append(("lit", "".join(buf)))
        return parts

    def heredoc(self):
        m = re.compile(r"<<(-?)([A-Za-z_]+)\n").match(self.s, self.i)
        if not m:
            self.err("bad heredoc")
        indent, tag = m.group(1), m.group(2)
        end = re.compile(r"\n[ \t]*" + tag + r"(?=\s*$|\s*[\n,}\]])").search(self.s, m.end() - 1)
        if not end:
            self.err(f"unterminated heredoc {tag}")
        body = self.s[m.end():end.start() + 1]
        self.i = end.end()
        if indent:
            lines = body.split("\n")
            n = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
            body = "\n".join(l[n:] for l in lines)
        sub = _Parser('"' + body.replace("\\", "\\\\").replace('"', '\\"') + '"', self.where)
        return sub.string()


class Terraform:
    def __init__(self, root: Path, tfvars: Path | None):
        self.root = Path(root)
        self.region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.resources: dict[str, dict[str, dict]] = {}
        self.data: dict[str, dict[str, dict]] = {}
        self.locals_raw: dict = {}
        defaults: dict = {}
        files = sorted(self.root.glob("*.tf"))
        self.files = files
        for f in files:
            doc = load_hcl(f)
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        self.resources.setdefault(rtype, {})[name] = dict(body, __file__=str(f))
            for block in doc.get("data", []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        self.data.setdefault(rtype, {})[name] = dict(body, __file__=str(f))
            for block in doc.get("variable", []):
                for name, body in block.items():
                    if "default" in body:
                        defaults[name] = (body["default"], str(f))
            for block in doc.get("locals", []):
                for k, v in block.items():
                    self.locals_raw[k] = (v, str(f))
        self.vars = {k: self.eval(v, where) for k, (v, where) in defaults.items()}
        if tfvars:
            tv = load_hcl(Path(tfvars))
            for k, v in tv.items():
                self.vars[k] = self.eval(v, str(tfvars))
        self._locals: dict = {}

    # ---------------- evaluation of hcl2 output values
    def eval(self, value, where: str):
        if isinstance(value, dict):
            return {k: self.eval(v, where) for k, v in value.items()}
        if isinstance(value, list):
            return [self.eval(v, where) for v in value]
        if not isinstance(value, str):
            return value
        text = value
        if text.startswith('"<<') and text.endswith('"'):
            text = text[1:-1]
        elif text.startswith("${") and text.endswith("}") and _balanced_whole(text):
            text = text[2:-1]
        return self._ev(_Parser(text, where).parse(), where)

    def _ev(self, node, where):
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "tmpl":
            parts = [self._ev(p, where) for p in node[1]]
            if len(parts) == 1 and node[1][0][0] != "lit":
                return parts[0]  # "${x}" keeps x's type, as in HCL
            return "".join(_tf_str(p) for p in parts)
        if kind == "list":
            return [self._ev(x, where) for x in node[1]]
        if kind == "obj":
            return {_tf_str(self._ev(k, where)): self._ev(v, where) for k, v in node[1]}
        if kind == "call":
            return self._call(node[1], [self._ev(a, where) for a in node[2]], where)
        if kind == "ref":
            return self._ref(node[1], where)
        if kind == "cond":
            return self._ev(node[2], where) if self._ev(node[1], where) else self._ev(node[3], where)
        if kind == "not":
            return not self._ev(node[1], where)
        if kind == "op":
            op, a = node[1], self._ev(node[2], where)
            if op == "&&":
                return bool(a) and bool(self._ev(node[3], where))
            if op == "||":
                return bool(a) or bool(self._ev(node[3], where))
            b = self._ev(node[3], where)
            ops = {"==": lambda x, y: x == y, "!=": lambda x, y: x != y, ">": lambda x, y: x > y, "<": lambda x, y: x < y,
                   ">=": lambda x, y: x >= y, "<=": lambda x, y: x <= y, "+": lambda x, y: x + y, "-": lambda x, y: x - y,
                   "*": lambda x, y: x * y, "/": lambda x, y: x / y, "%": lambda x, y: x % y}
            return ops[op](a, b)
        raise TerraformError(f"{where}: unsupported node {kind}")

    def _call(self, fn, args, where):
        funcs = {
            "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
            "jsondecode": lambda s: json.loads(s),
            "join": lambda sep, lst: sep.join(_tf_str(x) for x in lst),
            "lower": lambda s: s.lower(), "upper": lambda s: s.upper(),
            "concat": lambda *ls: [x for l in ls for x in l],
            "merge": lambda *ds: {k: v for d in ds for k, v in d.items()},
            "tostring": _tf_str, "tonumber": lambda s: float(s) if "." in str(s) else int(s),
            "length": len, "lookup": lambda m, k, *d: m.get(k, d[0]) if d else m[k],
            "coalesce": lambda *xs: next(x for x in xs if x not in (None, "")),
            "replace": lambda s, a, b: s.replace(a, b),
            "startswith": lambda s, p: str(s).startswith(p), "endswith": lambda s, p: str(s).endswith(p),
            "contains": lambda l, x: x in l, "try": lambda *xs: xs[0],
            "trimsuffix": lambda s, x: s[: -len(x)] if x and s.endswith(x) else s,
            "trimprefix": lambda s, x: s[len(x):] if s.startswith(x) else s,
            "format": lambda f, *a: re.sub(r"%[sdv]", "{}", f).format(*[_tf_str(x) for x in a]),
        }
        if fn not in funcs:
            raise TerraformError(f"{where}: unsupported Terraform function {fn}() (supported: {', '.join(sorted(funcs))})")
        return funcs[fn](*args)

    def _ref(self, parts, where):
        head = parts[0]
        if head == "var":
            if parts[1] not in self.vars:
                raise TerraformError(f"{where}: var.{parts[1]} has no value (not in the tfvars and no default)")
            return _index(self.vars[parts[1]], parts[2:], where)
        if head == "local":
            if parts[1] not in self._locals:
                if parts[1] not in self.locals_raw:
                    raise TerraformError(f"{where}: local.{parts[1]} is not defined")
                v, f = self.locals_raw[parts[1]]
                self._locals[parts[1]] = self.eval(v, f)
            return _index(self._locals[parts[1]], parts[2:], where)
        if head == "data":
            return self._data_attr(parts[1], parts[2], parts[3:], where)
        if head in self.resources or head.startswith("aws_"):
            return self.resource_attr(head, parts[1], parts[2:], where)
        raise TerraformError(f"{where}: unsupported reference {'.'.join(str(p) for p in parts)}")

    def _data_attr(self, dtype, name, rest, where):
        if dtype == "aws_caller_identity":
            return _index({"account_id": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root"}, rest, where)
        if dtype == "aws_region":
            return _index({"name": self.region, "region": self.region, "id": self.region}, rest, where)
        if dtype == "aws_partition":
            return _index({"partition": "aws"}, rest, where)
        body = self.data.get(dtype, {}).get(name)
        if body is None:
            raise TerraformError(f"{where}: data.{dtype}.{name} is not declared")
        return _index({k: self.eval(v, body["__file__"]) for k, v in body.items() if k != "__file__"}, rest, where)

    def enabled(self, rtype, name) -> bool:
        """count = <cond> ? 1 : 0 switches optional resources off; for_each resources count as present."""
        body = self.resource_body(rtype, name)
        if "count" not in body:
            return True
        return int(self.attr(rtype, name, "count")) > 0

    def resource_body(self, rtype, name):
        body = self.resources.get(rtype, {}).get(name)
        if body is None:
            raise TerraformError(f"resource {rtype}.{name} is not declared in {', '.join(str(f.name) for f in self.files)}")
        return body

    def attr(self, rtype, name, key, default=None):
        body = self.resource_body(rtype, name)
        if key not in body:
            return default
        return self.eval(body[key], f"{body['__file__']}: {rtype}.{name}.{key}")

    def resource_attr(self, rtype, name, rest, where):
        if rest and rest[0] not in (None,) and isinstance(rest[0], tuple):  # count/for_each index: resource.x[0]
            rest = rest[1:]
        attr_name = rest[0] if rest else "id"
        body = self.resource_body(rtype, name)
        if attr_name in body:
            return _index(self.attr(rtype, name, attr_name), rest[1:], where)
        acct, region = ACCOUNT, self.region
        nm = lambda *keys: next((self.attr(rtype, name, k) for k in keys if k in body), name)  # noqa: E731
        computed = {
            "aws_lambda_function": lambda: {"arn": f"arn:aws:lambda:{region}:{acct}:function:{nm('function_name')}",
                                            "invoke_arn": f"arn:aws:lambda:{region}:{acct}:function:{nm('function_name')}",
                                            "id": nm("function_name"), "function_name": nm("function_name")},
            "aws_sns_topic": lambda: {"arn": f"arn:aws:sns:{region}:{acct}:{nm('name')}", "id": f"arn:aws:sns:{region}:{acct}:{nm('name')}",
                                      "name": nm("name")},
            "aws_sqs_queue": lambda: {"arn": f"arn:aws:sqs:{region}:{acct}:{nm('name')}", "name": nm("name")},
            "aws_sagemaker_pipeline": lambda: {"arn": f"arn:aws:sagemaker:{region}:{acct}:pipeline/{nm('pipeline_name')}",
                                               "id": nm("pipeline_name"), "pipeline_name": nm("pipeline_name")},
            "aws_cloudwatch_event_rule": lambda: {"arn": f"arn:aws:events:{region}:{acct}:rule/{nm('name')}", "id": nm("name"),
                                                  "name": nm("name")},
            "aws_iam_role": lambda: {"arn": f"arn:aws:iam::{acct}:role/{nm('name')}", "id": nm("name"), "name": nm("name")},
            "aws_s3_bucket": lambda: {"arn": f"arn:aws:s3:::{nm('bucket')}", "id": nm("bucket"), "bucket": nm("bucket")},
            "aws_sagemaker_model_package_group": lambda: {
                "arn": f"arn:aws:sagemaker:{region}:{acct}:model-package-group/{nm('model_package_group_name')}",
                "id": nm("model_package_group_name")},
        }
        if rtype in computed:
            values = computed[rtype]()
            if attr_name in values:
                return _index(values[attr_name], rest[1:], where)
        raise TerraformError(f"{where}: attribute {rtype}.{name}.{attr_name} cannot be resolved locally")


def _balanced_whole(text: str) -> bool:
    """True when "${...}" spans the whole string (not "${a}-${b}")."""
    depth, i, in_str = 0, 0, False
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return False
        i += 1
    return True


def _index(value, rest, where):
    for r in rest:
        key = r[1] if isinstance(r, tuple) else r
        if isinstance(key, tuple):
            raise TerraformError(f"{where}: computed index is not supported")
        if isinstance(value, list):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise TerraformError(f"{where}: cannot index {value!r} with {key!r}")
    return value


def _tf_str(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)

"""Self-contained HTML report of a batch-inference run (stdlib only: it runs in the report job too).

render_report(...) returns one HTML page with inline CSS and inline SVG charts (no scripts,
no external assets): pipeline steps, model quality against its threshold, data-quality
violations and per-feature baseline-vs-current distributions drawn from Model Monitor
statistics.json documents (ours or Model Monitor's own).
"""
import bisect
import datetime as _dt
import html
import math
import os

BASE_COLOR = "#4c78a8"
CUR_COLOR = "#f58518"
OVERLAY_BINS = 20
MAX_CATEGORIES = 12

# The look this report shares with the local studio page (local_runtime/studio), which includes BASE_CSS.
BASE_CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;background:#f5f6f8;color:#1f2328}
header{background:#232f3e;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px;font-weight:600}
main{padding:20px 32px 40px}
section{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:16px 20px;margin-bottom:18px}
h2{font-size:17px;margin:0 0 12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}
.warn{background:#fff8c5;color:#7d4e00}.info{background:#ddf4ff;color:#0550ae}
.small{font-size:12px;color:#57606a}
.reason{color:#a40e26;font-size:12px}
"""

_CSS = BASE_CSS + """
header .meta{color:#c9d1d9;font-size:13px;margin-top:4px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #d8dee4;border-radius:8px;padding:10px 14px;min-width:170px}
.card .k{font-size:12px;color:#57606a}.card .v{font-size:20px;font-weight:600;margin-top:2px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(410px,1fr));gap:14px}
.feat{border:1px solid #d8dee4;border-radius:8px;padding:10px 12px}
.feat.flag{border-color:#cf222e;box-shadow:0 0 0 1px #cf222e inset}
.feat h3{font-size:14px;margin:0 0 4px;display:flex;justify-content:space-between;align-items:center;gap:6px}
.feat .sub{font-size:12px;color:#57606a;margin-bottom:4px}
.legend{font-size:12px;color:#57606a;margin-bottom:10px}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;vertical-align:-1px;margin:0 4px 0 10px}
.bar{height:10px;background:#4c78a8;border-radius:2px;display:inline-block;vertical-align:middle}
.verdict{font-size:18px;font-weight:600;margin:0 0 12px}
"""


def _e(x):
    return html.escape("" if x is None else str(x), quote=True)


def _fmt(x, digits=4):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, (int, float)):
        if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
            return str(x)
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
            return f"{x:.{digits - 1}e}"
        if float(x).is_integer() and abs(x) < 1e15:
            return f"{int(x):,}"
        return f"{x:.{digits}g}"
    return str(x)


def _time(x):
    """datetime / ISO string / epoch seconds -> aware datetime (or None)."""
    if x is None or x == "":
        return None
    if isinstance(x, _dt.datetime):
        return x if x.tzinfo else x.replace(tzinfo=_dt.timezone.utc)
    if isinstance(x, (int, float)):
        return _dt.datetime.fromtimestamp(x, tz=_dt.timezone.utc)
    try:
        t = _dt.datetime.fromisoformat(str(x).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def _duration(seconds):
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _status_badge(status):
    s = str(status or "unknown")
    low = s.lower()
    cls = ("ok" if low in ("succeeded", "success", "completed", "executing_done", "passed", "pass")
           else "bad" if low in ("failed", "failure", "error", "stopped", "fail")
           else "warn" if low in ("executing", "running", "starting", "stopping", "skipped")
           else "info")
    return f'<span class="badge {cls}">{_e(s)}</span>'


# --------------------------------------------------------------------------- distributions

def _sketch_cdf(num_stats):
    """(sorted values, cumulative fractions) from a KLL sketch (data[level] weighs 2**level)."""
    kll = ((num_stats or {}).get("distribution") or {}).get("kll") or {}
    pts = []
    for level, items in enumerate((kll.get("sketch") or {}).get("data") or []):
        w = float(2 ** level)
        pts.extend((float(v), w) for v in items or [])
    if not pts:
        return None
    pts.sort()
    vals, cum, total = [], [], 0.0
    for v, w in pts:
        total += w
        vals.append(v)
        cum.append(total)
    return vals, [c / total for c in cum]


def _cdf_at(cdf, x):
    vals, cum = cdf
    i = bisect.bisect_right(vals, x)
    return cum[i - 1] if i > 0 else 0.0


def _bucket_mass(num_stats, lo, hi, nbins):
    """Fraction of values in each of nbins equal bins over [lo, hi]."""
    width = (hi - lo) / nbins
    edges = [lo + i * width for i in range(nbins + 1)]
    cdf = _sketch_cdf(num_stats)
    if cdf is not None:
        out = []
        for i in range(nbins):
            left = _cdf_at(cdf, edges[i]) if i > 0 else 0.0
            right = _cdf_at(cdf, edges[i + 1]) if i < nbins - 1 else 1.0
            out.append(max(0.0, right - left))
        return out
    # no sketch: spread each bucket's count uniformly over its range
    buckets = (((num_stats or {}).get("distribution") or {}).get("kll") or {}).get("buckets") or []
    total = sum(float(b.get("count", 0)) for b in buckets)
    out = [0.0] * nbins
    if total <= 0:
        return out
    for b in buckets:
        bl, bu, c = float(b["lower_bound"]), float(b["upper_bound"]), float(b.get("count", 0))
        if bu <= bl:
            out[min(nbins - 1, max(0, int((bl - lo) / width)))] += c / total
            continue
        for i in range(nbins):
            ov = min(bu, edges[i + 1]) - max(bl, edges[i])
            if ov > 0:
                out[i] += c / total * ov / (bu - bl)
    return out


def _svg_bars(labels, series, axis_note="", width=400, height=170):
    """Overlayed (numeric) or grouped (categorical) bar chart as inline SVG."""
    left, right, top, bottom = 38, 8, 8, 34
    pw, ph = width - left - right, height - top - bottom
    n = len(labels)
    vmax = max([v for s in series for v in s["values"]] + [1e-12])
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img">']
    for frac in (0.0, 0.5, 1.0):  # y grid with percentages
        y = top + ph * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
                     f'fill="#57606a">{100 * vmax * frac:.0f}%</text>')
    slot = pw / max(n, 1)
    grouped = bool(series) and series[0].get("grouped")
    for si, s in enumerate(series):
        if s.get("outline"):  # step outline over the bars, so overlap stays readable
            pts = []
            for i, v in enumerate(s["values"]):
                y = top + ph - ph * v / vmax
                pts += [f"{left + i * slot:.1f},{y:.1f}", f"{left + (i + 1) * slot:.1f},{y:.1f}"]
            base = f"{left:.1f},{top + ph:.1f}"
            parts.append(f'<polyline points="{base} {" ".join(pts)} {left + pw:.1f},{top + ph:.1f}" fill="{s["color"]}" '
                         f'fill-opacity="0.12" stroke="{s["color"]}" stroke-width="2"/>')
            continue
        for i, v in enumerate(s["values"]):
            h = ph * v / vmax
            if grouped:
                bw = slot * 0.8 / len(series)
                x = left + i * slot + slot * 0.1 + si * bw
            else:
                bw = slot * 0.92
                x = left + i * slot + slot * 0.04
            parts.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{max(bw, 0.5):.1f}" '
                         f'height="{h:.1f}" fill="{s["color"]}" fill-opacity="{s.get("opacity", 1)}">'
                         f'<title>{_e(s["name"])} {_e(labels[i])}: {100 * v:.1f}%</title></rect>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#8c959f"/>')
    step = max(1, math.ceil(n / 6)) if not grouped else 1
    for i in range(0, n, step):
        x = left + i * slot + (slot / 2 if grouped else 0)
        anchor = "middle" if grouped else "start"
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 13}" font-size="10" text-anchor="{anchor}" '
                     f'fill="#57606a">{_e(labels[i])}</text>')
    if axis_note:
        parts.append(f'<text x="{left + pw}" y="{height - 4}" font-size="10" text-anchor="end" '
                     f'fill="#57606a">{_e(axis_note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _numeric_chart(name, b, c):
    bn, cn = (b or {}).get("numerical_statistics") or {}, (c or {}).get("numerical_statistics") or {}
    mins = [s["min"] for s in (bn, cn) if isinstance(s.get("min"), (int, float))]
    maxs = [s["max"] for s in (bn, cn) if isinstance(s.get("max"), (int, float))]
    if not mins:
        return '<p class="small">No numeric values to plot.</p>'
    lo, hi = min(mins), max(maxs)
    if hi <= lo:
        hi = lo + (abs(lo) * 0.01 or 1.0)
    series = []
    if bn.get("distribution"):
        series.append({"name": "baseline", "values": _bucket_mass(bn, lo, hi, OVERLAY_BINS),
                       "color": BASE_COLOR, "opacity": 0.8})
    if cn.get("distribution"):
        series.append({"name": "current", "values": _bucket_mass(cn, lo, hi, OVERLAY_BINS),
                       "color": CUR_COLOR, "outline": True})
    if not series:
        return '<p class="small">No distribution in the statistics.</p>'
    width = (hi - lo) / OVERLAY_BINS
    labels = [_fmt(lo + i * width, 3) for i in range(OVERLAY_BINS)]
    return _svg_bars(labels, series, axis_note=f"{_fmt(lo, 3)} … {_fmt(hi, 3)}")


def _categories(stats):
    b = ((((stats or {}).get("string_statistics") or {}).get("distribution") or {}).get("categorical") or {})
    out = {}
    for bk in b.get("buckets") or []:
        out[str(bk.get("value"))] = out.get(str(bk.get("value")), 0.0) + float(bk.get("count", 0))
    return out


def _categorical_chart(b, c):
    bc, cc = _categories(b), _categories(c)
    if not bc and not cc:
        return '<p class="small">No values to plot.</p>'
    nb, nc = sum(bc.values()) or 1.0, sum(cc.values()) or 1.0
    keys = sorted(set(bc) | set(cc), key=lambda k: -(bc.get(k, 0) / nb + cc.get(k, 0) / nc))
    note = ""
    if len(keys) > MAX_CATEGORIES:
        note = f"top {MAX_CATEGORIES} of {len(keys)} categories"
        keys = keys[:MAX_CATEGORIES]
    series = [{"name": "baseline", "values": [bc.get(k, 0) / nb for k in keys], "color": BASE_COLOR, "grouped": True},
              {"name": "current", "values": [cc.get(k, 0) / nc for k in keys], "color": CUR_COLOR, "grouped": True}]
    return _svg_bars(keys, series, axis_note=note)


def _common(stats):
    for key in ("numerical_statistics", "string_statistics"):
        if key in (stats or {}):
            return (stats[key] or {}).get("common") or {}
    return {}


def _distance(b, c):
    """L-infinity distance between baseline and current: CDFs of the numeric sketches, or category shares.
    Shown on each card and used to order them (largest drift first); None when a side is missing."""
    if not b or not c:
        return None
    if "numerical_statistics" in b:
        cb, cc = _sketch_cdf(b.get("numerical_statistics")), _sketch_cdf(c.get("numerical_statistics"))
        if not cb or not cc:
            return None
        return max(abs(_cdf_at(cb, x) - _cdf_at(cc, x)) for x in set(cb[0]) | set(cc[0]))
    bc, cc = _categories(b), _categories(c)
    nb, nc = sum(bc.values()), sum(cc.values())
    if not nb or not nc:
        return None
    return max(abs(bc.get(k, 0) / nb - cc.get(k, 0) / nc) for k in set(bc) | set(cc))


def _feature_card(name, b, c, feature_violations, distance=None, is_prediction=False):
    kind = (b or c or {}).get("inferred_type", "Unknown")
    is_num = "numerical_statistics" in (b or {}) or (b is None and "numerical_statistics" in (c or {}))
    chart = _numeric_chart(name, b, c) if is_num else _categorical_chart(b, c)
    rows = []
    if is_num:
        bn, cn = (b or {}).get("numerical_statistics") or {}, (c or {}).get("numerical_statistics") or {}
        for key in ("mean", "std_dev", "min", "max"):
            rows.append((key, _fmt(bn.get(key)), _fmt(cn.get(key))))
    else:
        bs, cs = (b or {}).get("string_statistics") or {}, (c or {}).get("string_statistics") or {}
        rows.append(("distinct", _fmt(bs.get("distinct_count")), _fmt(cs.get("distinct_count"))))
    bcm, ccm = _common(b), _common(c)
    rows.append(("missing", _fmt(bcm.get("num_missing")), _fmt(ccm.get("num_missing"))))
    stat_rows = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(x)}</td><td class='num'>{_e(y)}</td></tr>"
                        for k, x, y in rows)
    badges = "".join(f' <span class="badge bad">{_e(v.get("constraint_check_type"))}</span>'
                     for v in feature_violations) or ' <span class="badge ok">no violation</span>'
    presence = "" if b and c else (' <span class="badge warn">not in baseline</span>' if not b
                                   else ' <span class="badge warn">missing in current</span>')
    label = (' <span class="badge info">prediction</span>' if is_prediction else "")
    dist = f" · L∞ distance {_fmt(distance, 2)}" if distance is not None else ""
    what = "the model's prediction for each row" if is_prediction else kind
    return (f'<div class="feat{" flag" if feature_violations else ""}" data-feature="{_e(name)}"><h3><span>{_e(name)}{label}</span>'
            f'<span>{badges}{presence}</span></h3><div class="sub">{_e(what)}{_e(dist)}</div>{chart}'
            f'<table><tr><th></th><th class="num">baseline</th><th class="num">current</th></tr>{stat_rows}</table></div>')


# --------------------------------------------------------------------------- sections

def _violations_list(violations):
    if violations is None:
        return []
    if isinstance(violations, dict):
        violations = violations.get("violations") or []
    return list(violations)


def _steps_section(steps, log_links=None):
    if not steps:
        return '<section><h2>Pipeline steps</h2><p class="small">No step information.</p></section>'
    durations = []
    for s in steps:
        t0, t1 = _time(s.get("start")), _time(s.get("end"))
        durations.append((t1 - t0).total_seconds() if t0 and t1 else None)
    longest = max([d for d in durations if d is not None] + [1e-9])
    rows = []
    for s, d in zip(steps, durations):
        t0 = _time(s.get("start"))
        bar = f'<span class="bar" style="width:{max(2, 160 * d / longest):.0f}px"></span> ' if d is not None else ""
        reason = f'<div class="reason">{_e(s.get("failure_reason"))}</div>' if s.get("failure_reason") else ""
        link = (log_links or {}).get(s.get("name"))
        logs = f' <a class="small" href="{_e(link)}">logs</a>' if link else ""
        rows.append(f"<tr><td>{_e(s.get('name'))}{logs}{reason}</td><td>{_status_badge(s.get('status'))}</td>"
                    f"<td class='num'>{_e(t0.strftime('%Y-%m-%d %H:%M:%S') if t0 else '–')}</td>"
                    f"<td>{bar}<span class='small'>{_e(_duration(d))}</span></td></tr>")
    total = sum(d for d in durations if d is not None)
    return ('<section><h2>Pipeline steps</h2><table><tr><th>Step</th><th>Status</th><th class="num">Start (UTC)</th>'
            f'<th>Duration</th></tr>{"".join(rows)}</table><p class="small">Sum of step durations: '
            f'{_e(_duration(total))}</p></section>')


def _model_quality(model_quality, threshold):
    """(rows, threshold dict or None) from a model_quality.json-like document."""
    mq = model_quality or {}
    metrics = mq.get("regression_metrics") or mq.get("metrics") or {}
    thr = threshold if threshold is not None else mq.get("threshold")
    if isinstance(thr, (int, float)):
        thr = {"metric": "mse", "value": float(thr)}
    thr = dict(thr) if isinstance(thr, dict) else None
    if thr and thr.get("passed") is None:
        m = metrics.get(thr.get("metric", "mse")) or {}
        v = m.get("value") if isinstance(m, dict) else m
        if isinstance(v, (int, float)) and isinstance(thr.get("value"), (int, float)):
            thr["passed"] = v <= thr["value"]
    rows = []
    for name, m in metrics.items():
        v = m.get("value") if isinstance(m, dict) else m
        sd = m.get("standard_deviation") if isinstance(m, dict) else None
        rows.append((name, v, sd))
    return rows, thr


def _model_quality_section(model_quality, threshold):
    # the data-check step's note: which batch had no labels of its own, or why labels were quarantined
    note = (((model_quality or {}).get("ground_truth") or {}).get("note")) or ""
    note_html = f'<p class="small">{_e(note)}</p>' if note else ""
    scored = bool((model_quality or {}).get("regression_metrics") or (model_quality or {}).get("metrics"))
    if (model_quality is None or not scored) and threshold is None:
        return ('<section><h2>Model quality</h2><p class="small">Not evaluated (no ground truth for this run).'
                f'</p>{note_html}</section>')
    rows, thr = _model_quality(model_quality, threshold)
    body = []
    for name, v, sd in rows:
        verdict = ""
        if thr and name == thr.get("metric"):
            verdict = (f'{_status_badge("passed" if thr.get("passed") else "failed")} '
                       f'<span class="small">{"≤" if thr.get("passed") else ">"} threshold {_e(_fmt(thr.get("value")))}</span>')
        body.append(f"<tr><td>{_e(name)}</td><td class='num'>{_e(_fmt(v))}</td>"
                    f"<td class='num'>{_e(_fmt(sd))}</td><td>{verdict}</td></tr>")
    return ('<section><h2>Model quality</h2><table><tr><th>Metric</th><th class="num">Value</th>'
            f'<th class="num">Std. dev.</th><th>Against threshold</th></tr>{"".join(body)}</table>{note_html}</section>')


def _violations_section(violations):
    if not violations:
        return ('<section><h2>Data-quality violations</h2><p><span class="badge ok">none</span> '
                '<span class="small">All constraints of the baseline hold.</span></p></section>')
    rows = "".join(
        f"<tr><td>{_e(v.get('feature_name'))}</td><td>{_e(v.get('constraint_check_type'))}</td>"
        f"<td class='num'>{_e(_fmt(v.get('distance')))}</td><td class='num'>{_e(_fmt(v.get('threshold')))}</td>"
        f"<td class='small'>{_e(v.get('description'))}</td></tr>" for v in violations)
    return (f'<section><h2>Data-quality violations ({len(violations)})</h2><table><tr><th>Feature</th><th>Check</th>'
            f'<th class="num">Distance</th><th class="num">Threshold</th><th>Description</th></tr>{rows}</table></section>')


def _model_section(model):
    """Which model version scored the batch, with its training metrics."""
    if not model:
        return ""
    metrics = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(_fmt(v))}</td></tr>" for k, v in (model.get("metrics") or {}).items())
    return (f'<section id="model"><h2>Model version {_e(model.get("ref"))}</h2><p class="small">{_e(model.get("status") or "")} '
            f'{_e(model.get("arn") or "")}</p><table><tr><th>Training metric (test split)</th><th class="num">Value</th></tr>'
            f"{metrics}</table></section>")


def _trend_section(trend, threshold):
    """MSE of earlier runs (oldest first) and this one, as bars against the threshold."""
    points = [t for t in (trend or []) if isinstance(t.get("mse"), (int, float))]
    if len(points) < 2:
        return ""
    top = max([t["mse"] for t in points] + ([threshold] if isinstance(threshold, (int, float)) else [])) or 1.0
    rows = "".join(
        f"<tr><td class='small'>{_e(t.get('label'))}</td><td class='num'>{_e(_fmt(t['mse'], 3))}</td>"
        f"<td><span class=\"bar\" style=\"width:{max(2, 240 * t['mse'] / top):.0f}px;"
        f"{'background:#cf222e' if isinstance(threshold, (int, float)) and t['mse'] > threshold else ''}\"></span></td></tr>"
        for t in points)
    thr = f" (threshold {_e(_fmt(threshold))})" if isinstance(threshold, (int, float)) else ""
    return (f'<section id="trend"><h2>MSE over the last {len(points)} runs{thr}</h2><table><tr><th>Run</th>'
            f'<th class="num">MSE</th><th></th></tr>{rows}</table></section>')


def _prediction_drift_section(drift):
    """Model-output drift: the batch's predictions against the version's baseline of its own predictions on
    held-out rows (reported apart from the features, and not counted among them)."""
    if drift is None:
        return ('<section id="prediction-drift"><h2>Model output drift</h2><p class="small">Not checked: the model '
                'version has no prediction baseline.</p></section>')
    b = {f.get("name"): f for f in (drift.get("baseline_statistics") or {}).get("features") or []}
    c = {f.get("name"): f for f in (drift.get("current_statistics") or {}).get("features") or []}
    found = _violations_list(drift.get("violations"))
    cards = "".join(_feature_card(n, b.get(n), c.get(n), [v for v in found if v.get("feature_name") == n],
                                  _distance(b.get(n), c.get(n)), is_prediction=True) for n in list(b) or list(c))
    listed = "".join(f"<li>{_e(v.get('constraint_check_type'))}: {_e(v.get('description'))}</li>" for v in found)
    return (f'<section id="prediction-drift"><h2>Model output drift: predictions vs the version\'s baseline</h2>'
            f'<p class="small">Baseline: the version\'s predictions on its held-out test split.</p>'
            f'{f"<ul>{listed}</ul>" if listed else ""}<div class="grid">{cards}</div></section>')


def render_report(*, title, baseline_statistics, current_statistics, violations, model_quality=None,
                  threshold=None, steps=(), generated_at=None, model=None, prediction_drift=None,
                  log_links=None, mse_trend=None):
    """Return the report as one self-contained HTML page (str). ``prediction_drift``: {baseline_statistics,
    current_statistics, violations} of the prediction-drift check, or None when the version has no baseline."""
    violations = _violations_list(violations)
    steps = list(steps or [])
    b_feats = {f.get("name"): f for f in (baseline_statistics or {}).get("features") or []}
    c_feats = {f.get("name"): f for f in (current_statistics or {}).get("features") or []}
    names = list(b_feats) + [n for n in c_feats if n not in b_feats]
    by_feature = {}
    for v in violations:
        by_feature.setdefault(v.get("feature_name"), []).append(v)

    if isinstance(generated_at, (_dt.datetime, int, float)):
        gen = _time(generated_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    else:
        gen = str(generated_at or "")
    failed = [s for s in steps if str(s.get("status", "")).lower() in ("failed", "error")]
    mq_rows, thr = _model_quality(model_quality, threshold)
    prediction_violations = _violations_list((prediction_drift or {}).get("violations"))
    mq_verdict = ("passed" if thr.get("passed") else "failed") if thr and thr.get("passed") is not None else "n/a"
    cards = [
        ("Pipeline", _status_badge("Failed" if failed else ("Succeeded" if steps else "n/a"))),
        ("Rows checked", _e(_fmt((current_statistics or {}).get("dataset", {}).get("item_count")))),
        ("Data-quality violations", f'<span class="badge {"bad" if violations else "ok"}">{len(violations)}</span>'),
        ("Prediction-drift violations", _status_badge("n/a") if prediction_drift is None else
         f'<span class="badge {"bad" if prediction_violations else "ok"}">{len(prediction_violations)}</span>'),
        ("Model quality", _status_badge(mq_verdict)),
    ]
    cards_html = "".join(f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{v}</div></div>'
                         for k, v in cards)
    distances = {n: _distance(b_feats.get(n), c_feats.get(n)) for n in names}
    names.sort(key=lambda n: (-(distances[n] if distances[n] is not None else -1), n))
    feature_cards = "".join(_feature_card(n, b_feats.get(n), c_feats.get(n), by_feature.get(n, []), distances[n])
                            for n in names)
    drifted = {v.get("feature_name") for v in violations}
    verdict = [f"{len(drifted)}/{len(names)} features drifted" if drifted else f"no drift in {len(names)} features"]
    if prediction_violations:
        verdict.append("predictions drifted")
    mq_value = next((v for n, v, _ in mq_rows if thr and n == thr.get("metric")), None)
    if thr and isinstance(mq_value, (int, float)):
        verdict.append(f"{thr.get('metric', 'mse').upper()} {_fmt(mq_value, 3)} {'≤' if thr.get('passed') else '>'} "
                       f"{_fmt(thr.get('value'))}")
    elif model_quality is None:
        verdict.append("model quality not evaluated")
    if failed:
        verdict.append(f"failed at {failed[0].get('name')}")
    verdict_html = f'<p class="verdict" id="verdict">{_e(" · ".join(verdict))}</p>'
    legend = (f'<div class="legend">Share of values per bin (numeric: current drawn as outline) or category:<span class="sw" '
              f'style="background:{BASE_COLOR}"></span>baseline ({_e(_fmt((baseline_statistics or {}).get("dataset", {}).get("item_count")))} rows)'
              f'<span class="sw" style="background:{CUR_COLOR}"></span>current '
              f'({_e(_fmt((current_statistics or {}).get("dataset", {}).get("item_count")))} rows)</div>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{_e(title)}</h1><div class=\"meta\">Generated {_e(gen)}</div></header><main>"
            f'<section>{verdict_html}<div class="cards">{cards_html}</div></section>'
            f"{_model_section(model)}{_steps_section(steps, log_links)}{_model_quality_section(model_quality, threshold)}"
            f"{_trend_section(mse_trend, (thr or {}).get('value'))}"
            f"{_violations_section(violations)}"
            f'<section><h2>Feature distributions: baseline vs current</h2>{legend}<div class="grid">{feature_cards}'
            f"</div></section>{_prediction_drift_section(prediction_drift)}</main></body></html>\n")


def write_report(path, **kwargs):
    """Render the report and write it to path (parent folders created); returns path."""
    page = render_report(**kwargs)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path

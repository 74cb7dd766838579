"""The data catalog as one self-contained HTML page, for a person: a summary table of every
dataset, then a section per dataset with its fields and who may see them.

Why server-rendered and script-free, like the status page: it must read the same in any browser,
a terminal browser, or a test's parser. Every value is escaped — the registry's texts and the
schemas' docs are data, not markup. Nothing on it is personal data: it describes the datasets,
never a record.
"""

from __future__ import annotations

from html import escape

from foundation.moments import utc_stamp as stamp
from linkage.data_catalog import CatalogDataset, CatalogField, DataCatalog, Notified
from linkage.index_summary import IndexSummary
from linkage.status_html import NONE, UNAVAILABLE, duration, moment
from linkage.status_html import STYLE as STATUS_STYLE

STYLE = (
    STATUS_STYLE
    + """
td, th { text-align: left; }
td.records, td.freshness-p50, td.freshness-p99 { text-align: right; }
section { margin-top: 2.5rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dt { font-weight: bold; }
dd { margin: 0; }
ul { margin: 0; padding-left: 1.1rem; }
.kind { font-size: 0.85em; color: #555; }
.nobody { color: #777; }
code { font-family: ui-monospace, monospace; font-size: 0.9rem; }
"""
)


def _codes(dataset: CatalogDataset) -> str:
    return ", ".join(str(code) for code in dataset.codes)


def _held(index: IndexSummary | None, now_ms: int) -> tuple[str, str, str, str]:
    """Records, last change applied, freshness p50 and p99 — or unavailable when the index is."""
    if index is None:
        return UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE
    return (
        f"{index.records:,}",
        moment(index.last_applied_ms, now_ms),
        duration(index.freshness_p50_s),
        duration(index.freshness_p99_s),
    )


def _versions(dataset: CatalogDataset) -> str:
    schema = dataset.schema
    if schema is None:
        return "no schema source for this dataset"
    released = ", ".join(f"v{v.version}" for v in schema.versions if v.released) or "none"
    pending = "" if schema.current_released else f"; v{schema.current_version} in the sources, not yet released"
    return f"{released} released{pending}"


def _summary_row(dataset: CatalogDataset, now_ms: int) -> str:
    records, last, p50, p99 = _held(dataset.index, now_ms)
    subject = NONE if dataset.schema is None else dataset.schema.subject
    key = escape(dataset.dataset)
    cells = [
        ("codes", _codes(dataset)),
        ("agency", dataset.agency.upper()),
        ("subject", subject),
        ("versions", _versions(dataset)),
        ("records", records),
        ("last-applied", last),
        ("freshness-p50", p50),
        ("freshness-p99", p99),
    ]
    return (
        f'<tr data-dataset="{key}"><th scope="row" class="dataset"><a href="#dataset-{key}">{key}</a></th>'
        + "".join(f'<td class="{kind}">{escape(text)}</td>' for kind, text in cells)
        + "</tr>"
    )


def _visible(field: CatalogField) -> str:
    if not field.visible_to:
        return '<span class="nobody">no purpose</span>'
    return (
        "<ul>"
        + "".join(f"<li>{escape(v.consumer)} / {escape(v.purpose)} — {escape(v.basis)}</li>" for v in field.visible_to)
        + "</ul>"
    )


def _field_row(field: CatalogField) -> str:
    kind = "" if field.kind == "payload" else f' <span class="kind">({escape(field.kind)})</span>'
    since = NONE if field.since_version is None else f"v{field.since_version}"
    return (
        f'<tr data-field="{escape(field.name)}"><th scope="row" class="name"><code>{escape(field.name)}</code>{kind}'
        f'</th><td class="type">{escape(field.type or NONE)}</td><td class="doc">{escape(field.doc)}</td>'
        f'<td class="since">{since}</td><td class="visible">{_visible(field)}</td></tr>'
    )


def _access(dataset: CatalogDataset) -> str:
    if not dataset.access:
        return '<p class="access nobody">No consumer purpose covers this dataset.</p>'
    rows = "".join(
        f'<tr data-purpose="{escape(a.consumer)}/{escape(a.purpose)}"><th scope="row" class="consumer">'
        f'{escape(a.consumer)}<span class="agency-name">{escape(a.consumer_name)}</span></th>'
        f'<td class="purpose">{escape(a.purpose)}<span class="agency-name">{escape(a.description)}</span></td>'
        f'<td class="operations">{escape(", ".join(a.operations))}</td><td class="basis">{escape(a.basis)}</td>'
        f'<td class="fields">{escape(", ".join(a.fields) or "none (yes/no answers only)")}</td></tr>'
        for a in dataset.access
    )
    return (
        f'<table class="access"><thead><tr><th>Consumer</th><th>Purpose</th><th>Operations</th><th>Basis</th>'
        f"<th>Fields</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _notified(entry: Notified) -> str:
    if entry.role == "watched":
        linked = ", ".join(entry.linked_to) or "anything"
        what = f"its {', '.join(entry.change_types)} changes, when the {entry.party_relation} is linked to {linked}"
    else:
        what = f"changes of {', '.join(entry.datasets)} about a {entry.party_relation} linked to a record of it"
    return (
        f'<li data-consumer="{escape(entry.consumer)}">{escape(entry.consumer)} is notified of {escape(what)} '
        f"({escape(entry.description)}), on gdx.notify.{escape(entry.consumer)}</li>"
    )


def _section(dataset: CatalogDataset, now_ms: int) -> str:
    key = escape(dataset.dataset)
    records, last, p50, p99 = _held(dataset.index, now_ms)
    schema = dataset.schema
    notified = (
        ("<ul>" + "".join(_notified(n) for n in dataset.subscriptions) + "</ul>")
        if dataset.subscriptions
        else '<p class="nobody">No notify subscription names this dataset.</p>'
    )
    return f"""<section id="dataset-{key}" data-dataset="{key}">
<h2>{key} <span class="kind">(Appendix 2 no. {escape(_codes(dataset))})</span></h2>
<dl>
<dt>Owner</dt><dd class="agency">{escape(dataset.agency.upper())} — {escape(dataset.agency_name)}</dd>
<dt>Topic</dt><dd class="topic"><code>{escape(dataset.topic)}</code></dd>
<dt>Schema subject</dt><dd class="subject"><code>{escape(NONE if schema is None else schema.subject)}</code></dd>
<dt>Versions</dt><dd class="versions">{escape(_versions(dataset))}</dd>
<dt>Records in the index</dt><dd class="records">{escape(records)}</dd>
<dt>Last change applied</dt><dd class="last-applied">{escape(last)}</dd>
<dt>Freshness p50 / p99</dt><dd class="freshness">{escape(p50)} / {escape(p99)}</dd>
</dl>
<p class="doc">{escape("" if schema is None else schema.doc)}</p>
<table class="fields"><thead><tr><th>Field</th><th>Avro type</th><th>Meaning</th><th>Since</th>
<th>Who may see it, for what, on what basis</th></tr></thead>
<tbody>
{"".join(_field_row(field) for field in dataset.fields)}
</tbody></table>
<h3>Purposes that reach it</h3>
{_access(dataset)}
<h3>Notified changes</h3>
{notified}
</section>"""


def render(catalog: DataCatalog) -> str:
    now = catalog.generated_ms
    window = f"{catalog.freshness_window_s // 60} min"
    index_note = (
        ""
        if catalog.index_problem is None
        else (
            f'<p id="index-problem" class="banner warn">The linkage index cannot be read '
            f"({escape(catalog.index_problem)}): records, last change applied and freshness are unavailable.</p>"
        )
    )
    rows = "\n".join(_summary_row(dataset, now) for dataset in catalog.datasets)
    sections = "\n".join(_section(dataset, now) for dataset in catalog.datasets)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>GDX data catalog</title>
<style>{STYLE}</style>
</head>
<body>
<h1>GDX data catalog</h1>
<p id="generated">As of {stamp(now)}. Generated from what runs the exchange — the topic catalog, the Avro schemas,
the consumer registry, the notify subscriptions and the linkage index — never written by hand. For a program:
<a href="?format=json">the same as JSON</a>.</p>
{index_note}
<table id="datasets">
<thead><tr><th>Dataset</th><th>Appendix 2 no.</th><th>Owner</th><th>Schema subject</th><th>Versions</th>
<th>Records</th><th>Last change applied</th><th>Freshness p50 ({window})</th>
<th>Freshness p99 ({window})</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p>Freshness: from a change's commit at its agency to its being visible to lookups, over the records the index
applied in the last {window} ({NONE}: none in the window). Basis: the purpose's legal mandate, or the person's
consent, which every request then needs.</p>
{sections}
</body>
</html>
"""

// The dashboard's one page: inline CSS and JavaScript, no build step, no downloaded
// asset. It loads /state once, then renders every server-sent event of /events.
enum DashboardPage {
  static let html = """
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Tally dashboard</title>
    <style>
    :root { --bg:#f4f6f8; --card:#fff; --ink:#17202a; --muted:#5d6d7e; --line:#d5dbe1;
      --ok:#1e8449; --warn:#b9770e; --bad:#c0392b; --accent:#1f618d; }
    * { box-sizing: border-box; }
    body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
      background:var(--bg); color:var(--ink); }
    header { display:flex; align-items:baseline; gap:16px; padding:12px 20px; background:#17202a; color:#fff; }
    header h1 { font-size:20px; margin:0; }
    header .meta { color:#aeb6bf; }
    #health { font-weight:600; padding:2px 10px; border-radius:10px; }
    #health.ok { background:var(--ok); } #health.bad { background:var(--bad); }
    main { padding:14px 20px; }
    .cards { display:grid; grid-template-columns:repeat(6, 1fr); gap:12px; margin-bottom:14px; }
    .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
    .card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
    .card .value { font-size:26px; font-weight:650; font-variant-numeric:tabular-nums; }
    .cols { display:grid; grid-template-columns:1fr 1.2fr; gap:14px; }
    .cols > div { min-width:0; }
    section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px;
      margin-bottom:14px; overflow-x:auto; }
    h2 { font-size:15px; margin:2px 0 8px; color:var(--accent); }
    table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
    th, td { text-align:left; padding:3px 6px; border-bottom:1px solid #eaeef1; white-space:nowrap; }
    th { color:var(--muted); font-weight:600; font-size:12px; }
    td.num, th.num { text-align:right; }
    #nodes th, #nodes td { padding:3px 4px; }
    .neg { color:var(--bad); } .pos { color:var(--ok); }
    .scroll { max-height:330px; overflow:auto; }
    .pill { display:inline-block; padding:0 8px; border-radius:9px; font-size:12px; font-weight:600; }
    .pill.ok { background:#d4efdf; color:var(--ok); } .pill.bad { background:#f5b7b1; color:#78281f; }
    .pill.warn { background:#fdebd0; color:var(--warn); }
    .alert { border-left:4px solid var(--bad); padding:4px 8px; margin:6px 0; background:#fdf2f1;
      font-family:ui-monospace, monospace; font-size:12px; white-space:pre-wrap; word-break:break-all; }
    .empty { color:var(--muted); font-style:italic; }
    </style>
    </head>
    <body>
    <header>
      <h1>Tally</h1>
      <span class="meta" id="cluster">cluster</span>
      <span class="meta">voted through seq <b id="last-seq">0</b></span>
      <span class="meta">open trade date <b id="open-date">-</b></span>
      <span id="health" class="bad">connecting</span>
      <span class="meta" id="updated"></span>
    </header>
    <main>
    <div class="cards">
      <div class="card"><div class="label">Trades cleared</div><div class="value" id="trades-cleared">0</div></div>
      <div class="card"><div class="label">Trades / s</div><div class="value" id="trades-per-second">0</div></div>
      <div class="card"><div class="label">Seqs voted / s</div><div class="value" id="seqs-per-second">0</div></div>
      <div class="card"><div class="label">Rejections</div><div class="value" id="rejections-total">0</div></div>
      <div class="card"><div class="label">Defaults outstanding</div><div class="value" id="defaults-outstanding">0</div></div>
      <div class="card"><div class="label">Dividend tax withheld</div><div class="value" id="dividend-tax">0.00</div></div>
    </div>
    <div class="cols">
      <div>
        <section>
          <h2>Net cash per participant, open trade date <span id="open-date-2"></span></h2>
          <div class="scroll"><table id="participants">
            <thead><tr><th>Participant</th><th class="num">Net cash (CNY)</th><th>Status</th>
              <th class="num">Cleared (CNY)</th><th class="num">Fees (CNY)</th></tr></thead>
            <tbody></tbody></table></div>
        </section>
        <section>
          <h2>Settlement rows by status</h2>
          <table id="settlement"><tbody></tbody></table>
        </section>
        <section>
          <h2>Rejections by reason</h2>
          <table id="rejections"><tbody></tbody></table>
        </section>
      </div>
      <div>
        <section>
          <h2>Nodes</h2>
          <table id="nodes">
            <thead><tr><th>Node</th><th>Role</th><th>State</th><th class="num">Seq</th><th class="num" title="replicas: committed; voter: streamed">Durable</th><th class="num">Lag</th>
              <th>Kernel</th><th class="num">Agreed</th><th class="num">Dissents</th><th title="quarantined: its votes do not count">Quar.</th>
              <th class="num" title="mean ms of the node's step on a batch's way since the last update: the sequencer's journal commit, a replica's batch, the voter's decision commit">Step ms</th></tr></thead>
            <tbody></tbody></table>
          <div id="problems"></div>
        </section>
        <section>
          <h2>Latest alerts <span class="meta" id="alerts-total"></span></h2>
          <div id="alerts"><div class="empty">no alert</div></div>
        </section>
      </div>
    </div>
    </main>
    <script>
    "use strict";
    const $ = (id) => document.getElementById(id);
    const lastStep = {};
    const text = (id, v) => { $(id).textContent = v; };
    function cell(tr, v, cls) { const td = document.createElement("td"); td.textContent = v;
      if (cls) td.className = cls; tr.appendChild(td); return td; }
    function money(v) { return (v || "0.00"); }
    function fill(tbody, rows) { tbody.replaceChildren(...rows); }
    function render(s) {
      const b = s.business;
      text("last-seq", b.last_seq);
      text("open-date", b.open_date || "-"); text("open-date-2", b.open_date || "");
      text("trades-cleared", b.trades_cleared);
      text("trades-per-second", b.trades_per_second.toFixed(1));
      text("seqs-per-second", b.seqs_per_second.toFixed(1));
      text("rejections-total", b.events_rejected);
      text("defaults-outstanding", b.defaults_outstanding);
      $("defaults-outstanding").className = "value" + (b.defaults_outstanding > 0 ? " neg" : "");
      text("dividend-tax", b.dividend_tax_withheld);
      fill($("participants").tBodies[0], b.participants.map((p) => {
        const tr = document.createElement("tr"); tr.dataset.participant = p.participant;
        cell(tr, p.participant);
        cell(tr, p.net, "num net " + (p.net.startsWith("-") ? "neg" : "pos"));
        const st = cell(tr, ""); if (p.status) { const sp = document.createElement("span");
          sp.className = "pill " + (p.status === "DEFAULTED" ? "bad" : p.status === "PENDING" ? "warn" : "ok");
          sp.textContent = p.status; st.appendChild(sp); }
        cell(tr, p.cleared, "num cleared"); cell(tr, p.fees, "num fees");
        return tr; }));
      if (b.participants_total > b.participants.length) {
        const tr = document.createElement("tr");
        cell(tr, "… " + (b.participants_total - b.participants.length) + " more (see /metrics)", "empty");
        $("participants").tBodies[0].appendChild(tr); }
      fill($("settlement").tBodies[0], Object.entries(b.settlement_rows).map(([k, v]) => {
        const tr = document.createElement("tr"); tr.dataset.status = k; cell(tr, k); cell(tr, v, "num"); return tr; }));
      fill($("rejections").tBodies[0], b.rejections.length ? b.rejections.map(([k, v]) => {
        const tr = document.createElement("tr"); tr.dataset.reason = k; cell(tr, k); cell(tr, v, "num"); return tr; })
        : [(() => { const tr = document.createElement("tr"); cell(tr, "no rejection", "empty"); return tr; })()]);
      const st = s.status;
      if (st) {
        // Each node's step mean over the last update: the difference of two readings of
        // its {count, total_us} (the whole life's mean at the first, or after a restart).
        const stepMs = (n) => {
          const t = n.journal_commit_time || n.apply_time || n.decision_commit_time;
          if (!t) return "";
          const p = lastStep[n.name];
          const fresh = !p || t.count < p.count;
          const count = fresh ? t.count : t.count - p.count, us = fresh ? t.total_us : t.total_us - p.total_us;
          const shown = count > 0 ? (us / count / 1000).toFixed(2) : (p ? p.shown : "");
          lastStep[n.name] = { count: t.count, total_us: t.total_us, shown: shown };
          return shown; };
        text("cluster", "cluster " + st.cluster + " · quorum " + st.quorum);
        $("health").textContent = st.healthy ? "healthy" : "NOT HEALTHY";
        $("health").className = st.healthy ? "ok" : "bad";
        fill($("nodes").tBodies[0], st.nodes.map((n) => {
          const tr = document.createElement("tr"); tr.dataset.node = n.name;
          cell(tr, n.name); cell(tr, n.role);
          cell(tr, n.alive ? (n.answering ? "up" : "not answering") : "DOWN", n.alive && n.answering ? "pos" : "neg");
          const seq = n.role === "sequencer" ? n.last_seq : n.role === "replica" ? n.applied_seq : n.decided_through;
          cell(tr, seq == null ? "-" : seq, "num");
          const durable = n.role === "replica" ? n.committed_seq : n.role === "voter" ? n.streamed_through : null;
          cell(tr, durable == null ? "" : durable, "num");
          cell(tr, n.lag == null ? "" : n.lag, "num");
          cell(tr, n.kernel || ""); cell(tr, n.agreed == null ? "" : n.agreed, "num");
          cell(tr, n.dissents == null ? "" : n.dissents, "num" + (n.dissents > 0 ? " neg" : ""));
          cell(tr, n.role !== "replica" ? "" : n.quarantined ? "yes" : "no", n.quarantined ? "neg" : "");
          cell(tr, stepMs(n), "num step");
          return tr; }));
        $("problems").textContent = st.problems.length ? "Problems: " + st.problems.join("; ") : "";
        $("problems").className = st.problems.length ? "neg" : "";
      } else { $("health").textContent = "cluster not answering"; $("health").className = "bad"; }
      text("alerts-total", s.alerts_total ? "(" + s.alerts_total + " raised)" : "");
      fill($("alerts"), s.alerts.length ? s.alerts.slice().reverse().map((a) => {
        const d = document.createElement("div"); d.className = "alert";
        if (typeof a === "string") { d.textContent = a; return d; }
        const head = [a.time, a.kind, a.replica, a.kernel ? "(" + a.kernel + ")" : "",
          "seq " + a.first_seq + (a.last_seq !== a.first_seq ? "-" + a.last_seq : "")].filter(Boolean).join(" ");
        const body = (a.rows && a.rows.length) ? a.rows.map((r) => "  " + r) : [a.detail || ""];
        d.textContent = [head, ...(a.event ? ["  event " + a.event] : []), ...body].join("\\n");
        return d; }) : [(() => { const d = document.createElement("div"); d.className = "empty";
          d.textContent = "no alert"; return d; })()]);
      if (s.stream_error) { $("health").textContent = "stream: " + s.stream_error; $("health").className = "bad"; }
      text("updated", "updated " + new Date().toLocaleTimeString());
    }
    fetch("state").then((r) => r.json()).then(render).catch(() => {});
    const events = new EventSource("events");
    events.onmessage = (e) => render(JSON.parse(e.data));
    events.onerror = () => { $("health").textContent = "reconnecting"; $("health").className = "bad"; };
    </script>
    </body>
    </html>
    """
}

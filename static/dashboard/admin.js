/* The admin's pages: the live assignment queue, every request, one request's controls, the
 * servicemen (applications and vetting) and analytics with SVG charts. */
(function () {
  "use strict";
  var el = Dash.el, $ = Dash.$;
  var ATTENTION = ["SERVICEMAN_INSPECTED", "NEGOTIATING", "PAYMENT_CONFIRMED", "COMPLETED_BY_SERVICEMAN"];

  function waited(seconds) {
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
    return Math.floor(seconds / 86400) + " d";
  }

  Dash.page("admin-queue", function () {
    function load() {
      return Promise.all([Dash.getAll("/api/admin/requests/unassigned/?page_size=100", 300),
        Promise.all(ATTENTION.map(function (s) { return Dash.getAll("/api/requests/?page_size=100&status=" + s, 200); }))])
        .then(function (res) {
          var queue = res[0];
          $("queue-count").textContent = queue.length + " waiting";
          Dash.fillTable($("queue-table"), queue, function (r) {
            return el("tr", { class: r.is_emergency ? "emergency" : "", dataset: { id: r.id, emergency: r.is_emergency } },
              el("td", {}, el("a", { href: Dash.requestLink(r.id), text: "#" + r.id }), " ", Dash.emergencyBadge(r.is_emergency)),
              el("td", { text: r.category ? r.category.name : "" }),
              el("td", {}, r.client ? r.client.name : "", el("div", { class: "muted small", text: r.client ? r.client.phone : "" })),
              el("td", { text: Dash.date(r.booking_date) }),
              el("td", {}, r.preferred_serviceman ? el("span", {}, r.preferred_serviceman.name,
                el("div", { class: "muted small", text: (r.preferred_serviceman.is_available ? "available" : "busy") + " · " +
                  r.preferred_serviceman.active_jobs + " active" })) : "—"),
              el("td", { text: waited(r.waiting_seconds) }),
              el("td", {}, el("a", { class: "button small", href: Dash.requestLink(r.id), text: "Assign" })));
          });
          var attention = [].concat.apply([], res[1]).sort(function (a, b) { return a.id - b.id; });
          Dash.fillTable($("attention-table"), attention, function (r) {
            return el("tr", { dataset: { id: r.id, status: r.status } },
              el("td", {}, el("a", { href: Dash.requestLink(r.id), text: "#" + r.id }), " ", Dash.emergencyBadge(r.is_emergency)),
              el("td", {}, Dash.statusBadge(r.status)), el("td", { text: Dash.date(r.booking_date) }),
              el("td", { text: Dash.money(r.estimate_amount) }), el("td", { text: Dash.money(r.final_cost) }));
          });
        });
    }
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });

  Dash.page("admin-requests", function () {
    var filter = $("status-filter"), page = 1;
    ["PENDING_PAYMENT", "PENDING_ADMIN_ASSIGNMENT", "ASSIGNED", "SERVICEMAN_INSPECTED", "AWAITING_CLIENT_APPROVAL", "NEGOTIATING",
      "AWAITING_PAYMENT", "PAYMENT_CONFIRMED", "IN_PROGRESS", "COMPLETED_BY_SERVICEMAN", "COMPLETED", "CANCELLED"].forEach(function (s) {
      filter.appendChild(el("option", { value: s, text: Dash.words(s) }));
    });
    function load() {
      return Dash.get("/api/requests/?page_size=25&page=" + page + (filter.value ? "&status=" + filter.value : "")).then(function (res) {
        $("prev-page").disabled = !res.previous;
        $("next-page").disabled = !res.next;
        Dash.fillTable($("requests-table"), res.results, function (r) {
          return el("tr", { class: r.is_emergency ? "emergency" : "", dataset: { id: r.id, status: r.status } },
            el("td", {}, el("a", { href: Dash.requestLink(r.id), text: "#" + r.id }), " ", Dash.emergencyBadge(r.is_emergency)),
            el("td", {}, Dash.statusBadge(r.status)), el("td", { text: Dash.date(r.booking_date) }),
            el("td", { text: Dash.money(r.booking_fee) }), el("td", { text: Dash.money(r.estimate_amount) }),
            el("td", { text: Dash.money(r.final_cost) }), el("td", { text: Dash.datetime(r.updated_at) }));
        });
      });
    }
    filter.addEventListener("change", function () { page = 1; load().catch(Dash.fail); });
    $("prev-page").addEventListener("click", function () { page -= 1; load().catch(Dash.fail); });
    $("next-page").addEventListener("click", function () { page += 1; load().catch(Dash.fail); });
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });

  Dash.page("admin-request", function () {
    var id = Dash.requestId;
    var path = "/api/requests/" + id + "/";
    var admin = "/api/admin/requests/" + id + "/";

    function servicemanOption(s) {
      return { value: s.id, label: s.full_name + " — " + (s.is_available ? "available" : "busy") + ", " + s.active_jobs + " active, ★ " +
        Number(s.rating).toFixed(1) + (s.category_ids.indexOf(current.category_id) < 0 ? " (other service)" : "") };
    }

    var current = null;
    function actions(r, servicemen, negotiations) {
      var box = Dash.clear($("request-actions"));
      var s = r.status;
      var inCategory = servicemen.filter(function (x) { return x.category_ids.indexOf(r.category_id) >= 0; });
      var others = servicemen.filter(function (x) { return x.category_ids.indexOf(r.category_id) < 0; });
      var ordered = inCategory.concat(others);
      function byId(mid) { return servicemen.filter(function (x) { return x.id === mid; })[0]; }
      if (s === "PENDING_ADMIN_ASSIGNMENT") {
        var preferred = r.preferred_serviceman_id;
        var primaryOptions = ordered.map(servicemanOption);
        if (preferred) primaryOptions.sort(function (a, b) { return (b.value === preferred) - (a.value === preferred); });
        var backupOptions = primaryOptions.slice(1).concat(primaryOptions.slice(0, 1));
        box.appendChild(Dash.form({ id: "assign-form", title: "Assign servicemen",
          help: "Availability and open jobs are shown beside each name; servicemen of this service come first.",
          fields: [{ name: "primary_serviceman_id", label: "Primary", type: "select", options: primaryOptions },
            { name: "backup_serviceman_id", label: "Backup", type: "select", options: backupOptions },
            { name: "is_emergency", label: "Emergency", type: "checkbox" }],
          button: "Assign", done: "Assigned.",
          submit: function (v) {
            var body = { primary_serviceman_id: Number(v.primary_serviceman_id), backup_serviceman_id: Number(v.backup_serviceman_id) };
            if (v.is_emergency !== r.is_emergency) body.is_emergency = v.is_emergency;
            var outside = [byId(body.primary_serviceman_id), byId(body.backup_serviceman_id)].some(function (x) {
              return x && x.category_ids.indexOf(r.category_id) < 0; });
            if (outside) body.confirm_outside_category = true;
            return Dash.post(admin + "assign/", body).then(function (res) {
              (res.warnings || []).forEach(function (w) { Dash.toast(w, "info"); });
            });
          } }));
        var check = $("assign-form-is_emergency");
        if (check) check.checked = r.is_emergency;
      }
      if (["ASSIGNED", "SERVICEMAN_INSPECTED", "AWAITING_CLIENT_APPROVAL", "NEGOTIATING", "AWAITING_PAYMENT", "PAYMENT_CONFIRMED"].indexOf(s) >= 0) {
        box.appendChild(el("div", { class: "action row" },
          Dash.button(r.is_emergency ? "Clear emergency flag" : "Flag as emergency", "toggle-emergency", function () {
            return Dash.post(admin + "emergency/", { is_emergency: !r.is_emergency }); }, "secondary"),
          s === "ASSIGNED" && r.backup_serviceman_id ? Dash.button("Promote backup", "promote-backup", function () {
            return Dash.post(admin + "promote-backup/"); }, "secondary") : null));
      }
      if (s === "SERVICEMAN_INSPECTED") {
        box.appendChild(Dash.form({ id: "markup-form", title: "Set the final cost",
          help: "Estimate " + Dash.money(r.estimate_amount) + (r.estimate_notes ? " — " + r.estimate_notes : "") + ". Final cost = estimate × (1 + markup).",
          fields: [{ name: "markup_percentage", label: "Markup %", type: "number", step: "0.01", min: "0", value: "15" }],
          button: "Set final cost", done: "Final cost sent to the client.",
          submit: function (v) { return Dash.post(admin + "markup/", { markup_percentage: String(v.markup_percentage) }); } }));
      }
      if (s === "NEGOTIATING") {
        box.appendChild(Dash.form({ id: "consult-form", title: "Ask the serviceman", buttonClass: "secondary",
          help: "Whether the client's offer is acceptable to them.",
          fields: [{ name: "message", label: "Message", type: "textarea", placeholder: "Client offers ₦21,000: acceptable?" }],
          button: "Ask", done: "Serviceman asked.",
          submit: function (v) { return Dash.post(admin + "consult-serviceman/", { message: v.message }); } }));
      }
      if (s === "PAYMENT_CONFIRMED") {
        box.appendChild(el("div", { class: "action" }, el("p", { text: "Paid in full: tell the serviceman to proceed." }),
          Dash.button("Start work", "start-work", function () { return Dash.post(admin + "start-work/"); })));
      }
      if (s === "COMPLETED_BY_SERVICEMAN") {
        box.appendChild(el("div", { class: "action" }, el("p", { text: "The serviceman marked it done. Confirm once the client agrees." }),
          Dash.button("Confirm completion", "confirm-completion", function () { return Dash.post(admin + "confirm-completion/"); })));
      }
      if (["PAYMENT_CONFIRMED", "IN_PROGRESS", "COMPLETED_BY_SERVICEMAN", "COMPLETED", "CANCELLED"].indexOf(s) < 0) {
        box.appendChild(Dash.form({ id: "cancel-form", title: "Cancel", button: "Cancel request", buttonClass: "danger",
          fields: [{ name: "reason", label: "Reason", type: "textarea", placeholder: "Client asked by phone" }], done: "Cancelled.",
          submit: function (v) { return Dash.post(path + "cancel/", { reason: v.reason }); } }));
      }
      Dash.renderNegotiations(negotiations, s, { counter: true,
        proposer: function (n) { return n.proposed_by_id === current.client_id ? "Client" : "Admin"; },
        answerable: function (n) { return n.proposed_by_id === current.client_id; } });
    }

    function load() {
      return Promise.all([Dash.get(path), Dash.get(path + "events/?page_size=100"), Dash.get(path + "negotiations/?page_size=100"),
        Dash.getAll("/api/admin/servicemen/?status=APPROVED&page_size=100", 300), Dash.get("/api/categories/?page_size=100"),
        Dash.get("/api/payments/?page_size=100&service_request_id=" + id)]).then(function (res) {
        var r = current = res[0];
        var names = {};
        res[3].forEach(function (s) { names[s.id] = s.full_name; });
        var category = res[4].results.filter(function (c) { return c.id === r.category_id; })[0];
        Dash.statusBadge(r.status, $("request-status"));
        var facts = Dash.clear($("request-facts"));
        Dash.fact(facts, "Service", category ? category.name : "#" + r.category_id);
        Dash.fact(facts, "Date", el("span", {}, Dash.date(r.booking_date), " ", Dash.emergencyBadge(r.is_emergency),
          r.auto_flagged_emergency ? el("span", { class: "muted small", text: " (auto-flagged)" }) : null));
        Dash.fact(facts, "Address", r.address);
        Dash.fact(facts, "Job", r.description);
        Dash.fact(facts, "Preferred", r.preferred_serviceman_id ? names[r.preferred_serviceman_id] || "#" + r.preferred_serviceman_id : null);
        Dash.fact(facts, "Primary", el("span", { id: "primary-name", text: r.primary_serviceman_id ? names[r.primary_serviceman_id] || "#" + r.primary_serviceman_id : "—" }));
        Dash.fact(facts, "Backup", r.backup_serviceman_id ? names[r.backup_serviceman_id] || "#" + r.backup_serviceman_id : null);
        Dash.fact(facts, "Booking fee", Dash.money(r.booking_fee));
        Dash.fact(facts, "Estimate", Dash.money(r.estimate_amount));
        Dash.fact(facts, "Markup", r.markup_percentage !== null ? r.markup_percentage + "%" : null);
        Dash.fact(facts, "Final cost", el("span", { id: "final-cost-fact", text: Dash.money(r.final_cost) }));
        actions(r, res[3], res[2].results);
        Dash.renderTimeline($("timeline"), res[1].results);
        Dash.fillList($("payments"), res[5].results.filter(function (p) { return p.service_request_id === id; }), function (p) {
          return el("li", { dataset: { status: p.status } }, Dash.words(p.payment_type) + " " + Dash.money(p.amount) + " · ",
            el("span", { class: "tag", text: Dash.words(p.status) }), " ", el("span", { class: "muted small", text: p.paystack_reference }),
            p.status === "SUCCESS" ? el("div", {}, Dash.button("Refund…", "refund-" + p.id, function () {
              var reason = window.prompt("Refund " + Dash.money(p.amount) + ": the reason (sent to the client)");
              if (!reason) return null;
              return Dash.post("/api/admin/payments/" + p.id + "/refund/", { reason: reason }).then(function () {
                Dash.toast("Refund started.", "ok"); });
            }, "link")) : null);
        });
      });
    }
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });

  Dash.page("admin-servicemen", function () {
    var status = "PENDING_APPROVAL";
    var categories = {};
    var tabs = $("approval-tabs");
    Array.prototype.forEach.call(tabs.children, function (tab) {
      tab.addEventListener("click", function () {
        status = tab.dataset.status;
        Array.prototype.forEach.call(tabs.children, function (t) { t.classList.toggle("active", t === tab); });
        load().catch(Dash.fail);
      });
    });
    function reasonAction(s, action, label) {
      return Dash.button(label, action + "-" + s.id, function () {
        var reason = window.prompt(label + " " + s.full_name + ": the reason (sent to them)");
        if (!reason) return null;
        return Dash.post("/api/admin/servicemen/" + s.id + "/" + action + "/", { reason: reason });
      }, "secondary");
    }
    function load() {
      return Dash.getAll("/api/admin/servicemen/?page_size=100&status=" + status, 300).then(function (rows) {
        Dash.fillTable($("servicemen-table"), rows, function (s) {
          var buttons = [];
          if (s.approval_status === "PENDING_APPROVAL") {
            buttons.push(Dash.button("Approve", "approve-" + s.id, function () { return Dash.post("/api/admin/servicemen/" + s.id + "/approve/"); }));
            buttons.push(reasonAction(s, "reject", "Reject"));
          } else if (s.approval_status === "APPROVED") {
            buttons.push(reasonAction(s, "suspend", "Suspend"));
          } else if (s.approval_status === "SUSPENDED") {
            buttons.push(Dash.button("Reinstate", "reinstate-" + s.id, function () { return Dash.post("/api/admin/servicemen/" + s.id + "/reinstate/"); }));
          }
          return el("tr", { dataset: { id: s.id } },
            el("td", {}, el("strong", { text: s.full_name }), s.bio ? el("div", { class: "muted small", text: s.bio }) : null,
              s.status_reason ? el("div", { class: "muted small", text: "Reason: " + s.status_reason }) : null),
            el("td", {}, s.email, el("div", { class: "muted small", text: s.phone })),
            el("td", { text: s.category_ids.map(function (c) { return (categories[c] || {}).name || "#" + c; }).join(", ") }),
            el("td", { text: s.years_of_experience + " yrs" }),
            el("td", { text: s.rating_count ? "★ " + Number(s.rating).toFixed(2) + " (" + s.rating_count + ")" : "—" }),
            el("td", { text: String(s.jobs_completed) }),
            el("td", { text: (s.is_available ? "yes" : "no") + " · " + s.active_jobs + " active" }),
            el("td", { class: "row" }, buttons));
        });
      });
    }
    Dash.onRefresh(load);
    Dash.get("/api/categories/?page_size=100").then(function (page) {
      page.results.forEach(function (c) { categories[c.id] = c; });
    }).catch(Dash.fail).then(load).catch(Dash.fail);
  });

  Dash.page("admin-refunds", function () {
    // FAILED: ask Paystack again. NEEDS_BANK (Paystack's needs-attention): the customer's bank account
    // goes to Paystack's retry_with_customer_details; it is never stored here.
    function refundAction(r) {
      if (r.status === "FAILED") {
        return Dash.button("Retry", "retry-" + r.id, function () {
          return Dash.post("/api/admin/refunds/" + r.id + "/retry/"); }, "secondary");
      }
      if (r.status !== "NEEDS_BANK") return null;
      return Dash.button("Customer's bank…", "customer-details-" + r.id, function () {
        var bank = window.prompt("Refund #" + r.id + ": Paystack needs the customer's bank account.\nThe bank's code (as in the bank list, e.g. 058)");
        if (!bank) return null;
        var number = window.prompt("The customer's 10-digit account number");
        if (!number) return null;
        return Dash.post("/api/admin/refunds/" + r.id + "/customer-details/", { bank_code: bank.trim(), account_number: number.trim() })
          .then(function () { Dash.toast("Sent to Paystack: the refund is processing.", "ok"); });
      }, "secondary");
    }
    function load() {
      return Dash.optional(Dash.getAll("/api/admin/refunds/?page_size=100", 300)).then(function (rows) {
        if (rows === null) return;
        Dash.fillTable($("refunds-table"), rows, function (r) {
          return el("tr", { dataset: { id: r.id, status: r.status } }, el("td", { text: "#" + r.id }),
            el("td", {}, el("a", { href: Dash.requestLink(r.service_request_id), text: "#" + r.service_request_id })),
            el("td", { text: Dash.money(r.amount) }), el("td", {}, el("span", { class: "tag", text: Dash.words(r.status) })),
            el("td", { text: r.reason || "" }), el("td", { class: "small", text: r.policy || "" }),
            el("td", { text: Dash.datetime(r.created_at) }),
            el("td", { title: r.failure_reason || "" }, refundAction(r)));
        });
      });
    }
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });

  Dash.page("admin-payouts", function () {
    var status = $("payout-status"), approve = $("approve-payouts"), all = $("select-all");
    // AWAITING_OTP: Paystack holds the transfer until the OTP it sent to the business's phone is entered.
    function payoutAction(p) {
      if (p.status !== "AWAITING_OTP") return null;
      return Dash.button("Enter OTP…", "finalize-" + p.id, function () {
        var otp = window.prompt("Payout #" + p.id + ": the OTP Paystack sent to the business's phone");
        if (!otp) return null;
        return Dash.post("/api/admin/payouts/" + p.id + "/finalize/", { otp: otp.trim() })
          .then(function () { Dash.toast("Transfer finalized.", "ok"); });
      }, "secondary");
    }
    var names = {};
    function selected() {
      return Array.prototype.map.call(document.querySelectorAll("#payouts-table input.pick-payout:checked"),
        function (box) { return Number(box.value); });
    }
    function load() {
      return Promise.all([Dash.optional(Dash.getAll("/api/admin/payouts/?page_size=100" + (status.value ? "&status=" + status.value : ""), 300)),
        Dash.getAll("/api/admin/servicemen/?page_size=100&status=APPROVED", 300)]).then(function (res) {
        if (res[0] === null) return;
        res[1].forEach(function (s) { names[s.id] = s.full_name; });
        Dash.fillTable($("payouts-table"), res[0], function (p) {
          var box = p.status === "OWED" ? el("input", { type: "checkbox", class: "pick-payout", value: p.id }) : null;
          if (box) box.addEventListener("change", function () { approve.disabled = !selected().length; });
          return el("tr", { dataset: { id: p.id, status: p.status } }, el("td", {}, box), el("td", { text: "#" + p.id }),
            el("td", { text: names[p.serviceman_id] || "#" + p.serviceman_id }),
            el("td", {}, el("a", { href: Dash.requestLink(p.service_request_id), text: "#" + p.service_request_id })),
            el("td", { text: Dash.money(p.amount) }), el("td", { text: Dash.money(p.platform_share) }),
            el("td", { title: p.failure_reason || "" }, el("span", { class: "tag", text: Dash.words(p.status) })),
            el("td", { class: "small", text: p.transfer_reference || "" }), el("td", {}, payoutAction(p)));
        });
        approve.disabled = !selected().length;
      });
    }
    all.addEventListener("change", function () {
      Array.prototype.forEach.call(document.querySelectorAll("#payouts-table input.pick-payout"), function (b) { b.checked = all.checked; });
      approve.disabled = !selected().length;
    });
    approve.addEventListener("click", function () {
      approve.disabled = true;
      Dash.post("/api/admin/payouts/approve/", { payout_ids: selected() }).then(function () {
        Dash.toast("Transfers started.", "ok");
        Dash.refresh();
      }).catch(Dash.fail);
    });
    status.addEventListener("change", function () { load().catch(Dash.fail); });
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });

  // --- charts: plain SVG, no library ---------------------------------------------------------

  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Vertical bars: [{label, value, title}]. */
  function columnChart(container, items, format) {
    Dash.clear(container);
    if (!items.length) { container.appendChild(el("p", { class: "muted", text: "No data yet." })); return; }
    var width = 640, height = 220, pad = 30, max = Math.max.apply(null, items.map(function (i) { return i.value; })) || 1;
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + (height + 40), class: "svg-chart", role: "img" });
    var slot = (width - pad) / items.length, bar = Math.min(60, slot * 0.7);
    chart.appendChild(svg("line", { x1: pad, y1: height, x2: width, y2: height, class: "axis" }));
    items.forEach(function (item, i) {
      var h = Math.max(1, (item.value / max) * (height - 30));
      var x = pad + i * slot + (slot - bar) / 2;
      var rect = svg("rect", { x: x, y: height - h, width: bar, height: h, class: "bar", rx: 3 });
      rect.appendChild(svg("title", {}, item.title || item.label + ": " + format(item.value)));
      chart.appendChild(rect);
      chart.appendChild(svg("text", { x: x + bar / 2, y: height - h - 6, class: "value", "text-anchor": "middle" }, format(item.value)));
      chart.appendChild(svg("text", { x: x + bar / 2, y: height + 18, class: "label", "text-anchor": "middle" }, item.label));
    });
    container.appendChild(chart);
  }

  /** Horizontal bars: [{label, value}]. */
  function barChart(container, items, format) {
    Dash.clear(container);
    if (!items.length) { container.appendChild(el("p", { class: "muted", text: "No data yet." })); return; }
    var width = 480, row = 26, labelWidth = 190, max = Math.max.apply(null, items.map(function (i) { return i.value; })) || 1;
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + items.length * row, class: "svg-chart", role: "img" });
    items.forEach(function (item, i) {
      var w = Math.max(1, (item.value / max) * (width - labelWidth - 50));
      chart.appendChild(svg("text", { x: labelWidth - 8, y: i * row + 17, class: "label", "text-anchor": "end" }, item.label));
      chart.appendChild(svg("rect", { x: labelWidth, y: i * row + 5, width: w, height: row - 10, class: "bar", rx: 3 }));
      chart.appendChild(svg("text", { x: labelWidth + w + 6, y: i * row + 17, class: "value" }, format(item.value)));
    });
    container.appendChild(chart);
  }

  Dash.page("admin-analytics", function () {
    var count = function (v) { return String(v); };
    var naira = function (v) { return "₦" + Math.round(v).toLocaleString("en-NG"); };
    function load() {
      return Promise.all([Dash.get("/api/admin/analytics/revenue/"), Dash.get("/api/admin/analytics/requests/"),
        Dash.get("/api/admin/analytics/top-servicemen/?by=jobs&limit=5"), Dash.get("/api/admin/analytics/top-categories/?limit=8")])
        .then(function (res) {
          var revenue = res[0], stats = res[1];
          var totals = Dash.clear($("revenue-totals"));
          // gross - refunds = serviceman shares + held + Paystack fees + platform net (the API's identity)
          [["Gross", revenue.gross], ["Refunds", revenue.refunds], ["Paystack fees", revenue.paystack_fees],
            ["Serviceman shares", revenue.serviceman_shares], ["Held for unconfirmed jobs", revenue.held],
            ["Platform net", revenue.platform_net]].forEach(function (pair) {
            if (pair[1] === undefined) return;
            totals.appendChild(el("div", { class: "stat" }, el("span", { class: "stat-value", text: Dash.money(pair[1]) }),
              el("span", { class: "stat-label", text: pair[0] })));
          });
          totals.appendChild(el("div", { class: "stat" }, el("span", { class: "stat-value", text: String(stats.total) }),
            el("span", { class: "stat-label", text: "Requests" })));
          columnChart($("revenue-chart"), revenue.by_month.map(function (m) {
            return { label: m.month, value: Number(m.total !== undefined ? m.total : 0) };
          }), naira);
          barChart($("status-chart"), Object.keys(stats.by_status).filter(function (s) { return stats.by_status[s]; }).map(function (s) {
            return { label: Dash.words(s), value: stats.by_status[s] };
          }), count);
          $("assignment-speed").textContent = stats.average_seconds_to_assignment === null ? "" :
            "Average time from payment to assignment: " + waited(Math.round(stats.average_seconds_to_assignment)) + ".";
          Dash.fillTable($("top-servicemen"), res[2].results, function (s) {
            return el("tr", {}, el("td", { text: s.full_name }), el("td", { text: "★ " + Number(s.rating).toFixed(2) + " (" + s.rating_count + ")" }),
              el("td", { text: String(s.jobs_completed) }));
          });
          barChart($("category-chart"), res[3].results.map(function (c) { return { label: c.name, value: c.request_count }; }), count);
        });
    }
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });
})();

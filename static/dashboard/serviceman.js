/* The serviceman's pages: assigned jobs with earnings and stats, and one job's controls. */
(function () {
  "use strict";
  var el = Dash.el, $ = Dash.$;

  function stat(label, value, id) {
    return el("div", { class: "stat" }, el("span", { class: "stat-value", id: id, text: value }), el("span", { class: "stat-label", text: label }));
  }

  Dash.page("serviceman-jobs", function () {
    var toggle = $("available-toggle");
    toggle.addEventListener("change", function () {
      Dash.patch("/api/auth/me/", { is_available: toggle.checked }).then(function () {
        Dash.toast(toggle.checked ? "You are available for new jobs." : "You are marked busy.", "ok");
      }).catch(Dash.fail);
    });
    function load() {
      return Promise.all([Dash.get("/api/serviceman/stats/"), Dash.getAll("/api/serviceman/jobs/?page_size=100", 300),
        Dash.get("/api/auth/me/")]).then(function (res) {
        var s = res[0], all = s.all_time || {}, month = s.this_month || {};
        var stats = Dash.clear($("stats"));
        stats.appendChild(stat("Earnings (all time)", Dash.money(all.earnings), "stat-earnings"));
        stats.appendChild(stat("Earnings this month", Dash.money(month.earnings)));
        stats.appendChild(stat("Owed to you", Dash.money(s.earnings_owed), "stat-owed"));
        stats.appendChild(stat("On its way", Dash.money(s.earnings_in_transit)));
        stats.appendChild(stat("Paid to you", Dash.money(s.earnings_paid), "stat-paid"));
        stats.appendChild(stat("Jobs completed", String(all.jobs_completed || 0), "stat-jobs"));
        stats.appendChild(stat("Average rating", all.average_rating ? "★ " + all.average_rating + " (" + all.rating_count + ")" : "—", "stat-rating"));
        stats.appendChild(stat("Active jobs", String(s.active_jobs || 0)));
        stats.appendChild(stat("Completion rate", s.completion_rate !== null && s.completion_rate !== undefined ? s.completion_rate + "%" : "—"));
        if (res[2].serviceman_profile) toggle.checked = res[2].serviceman_profile.is_available;
        Dash.fillTable($("jobs-table"), res[1], function (j) {
          return el("tr", { class: j.is_emergency ? "emergency" : "", dataset: { id: j.id, status: j.status } },
            el("td", {}, el("a", { href: Dash.requestLink(j.id), text: "#" + j.id }), " ", Dash.emergencyBadge(j.is_emergency)),
            el("td", { text: j.role === "primary" ? "Primary" : "Backup" }),
            el("td", { text: Dash.date(j.booking_date) }), el("td", { text: j.address }),
            el("td", {}, Dash.statusBadge(j.status)), el("td", { text: Dash.money(j.estimate_amount) }));
        });
      });
    }
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });

  Dash.page("serviceman-payouts", function () {
    function load() {
      return Dash.optional(Dash.getAll("/api/serviceman/payouts/?page_size=100", 300)).then(function (rows) {
        if (rows === null) return;
        Dash.fillTable($("payouts-table"), rows, function (p) {
          return el("tr", { dataset: { id: p.id, status: p.status } }, el("td", { text: "#" + p.id }),
            el("td", {}, el("a", { href: Dash.requestLink(p.service_request_id), text: "#" + p.service_request_id })),
            el("td", { text: Dash.money(p.amount) }), el("td", {}, el("span", { class: "tag", text: Dash.words(p.status) })),
            el("td", { text: Dash.datetime(p.paid_at) }));
        });
      });
    }
    function loadAccount() {
      return Dash.optional(Dash.get("/api/serviceman/payout-account/")).then(function (account) {
        var facts = Dash.clear($("account-facts"));
        if (!account) { Dash.fact(facts, "Account", "none yet"); return; }
        Object.keys(account).forEach(function (key) {
          if (typeof account[key] !== "object") Dash.fact(facts, Dash.words(key), String(account[key]));
        });
      }).catch(function (err) {
        if (err.status !== 404) throw err;
        Dash.fact(Dash.clear($("account-facts")), "Account", "none yet");
      });
    }
    Dash.optional(Dash.get("/api/banks/")).then(function (banks) {
      if (banks === null) return;
      var select = $("bank-code");
      (Array.isArray(banks) ? banks : banks.results || []).forEach(function (b) {
        select.appendChild(el("option", { value: b.code, text: b.name }));
      });
    }).catch(Dash.fail);
    $("account-form").addEventListener("submit", function (event) {
      event.preventDefault();
      Dash.post("/api/serviceman/payout-account/", { bank_code: $("bank-code").value, account_number: $("account-number").value })
        .then(function () { Dash.toast("Bank account saved.", "ok"); return loadAccount(); }).catch(Dash.fail);
    });
    Dash.onRefresh(load);
    load().catch(Dash.fail);
    loadAccount().catch(Dash.fail);
  });

  Dash.page("serviceman-job", function () {
    var id = Dash.requestId;
    var path = "/api/requests/" + id + "/";
    var consulted = null; // the admin's latest question, from the job's notifications

    function actions(r) {
      var box = Dash.clear($("request-actions"));
      var primary = r.primary_serviceman_id === Dash.userId;
      var s = r.status;
      if (primary && s === "ASSIGNED") {
        box.appendChild(Dash.form({ id: "estimate-form", title: "Submit your estimate", help: "After inspecting: your price for the job.",
          fields: [{ name: "amount", label: "Amount (₦)", type: "number", step: "0.01", min: "1" },
            { name: "notes", label: "What it covers", type: "textarea", required: false, placeholder: "New trap and seals" }],
          button: "Submit estimate", done: "Estimate sent to the admins.",
          submit: function (v) { return Dash.post("/api/serviceman/submit-estimate/",
            { service_request_id: id, amount: Number(v.amount).toFixed(2), notes: v.notes }); } }));
      }
      if (primary && s === "NEGOTIATING") {
        box.appendChild(el("div", { class: "action" }, consulted ? el("p", {}, el("strong", { text: "Admin asks: " }), consulted) : null,
          Dash.form({ id: "consultation-form", title: "Is the client's offer acceptable?", button: "Reply",
            fields: [{ name: "acceptable", label: "Answer", type: "select", options: [{ value: "true", label: "Yes, acceptable" }, { value: "false", label: "No" }] },
              { name: "message", label: "Message", type: "textarea", required: false }],
            done: "Reply sent.",
            submit: function (v) { return Dash.post("/api/serviceman/requests/" + id + "/consultation-reply/",
              { acceptable: v.acceptable === "true", message: v.message }); } })));
      }
      if (primary && s === "IN_PROGRESS") {
        box.appendChild(el("div", { class: "action" }, el("p", { text: "Done? Tell the admins; they confirm with the client." }),
          Dash.button("Mark job complete", "complete-job", function () { return Dash.post("/api/serviceman/requests/" + id + "/complete/"); })));
      }
      if (s === "ASSIGNED") {
        box.appendChild(Dash.form({ id: "decline-form", title: "Can't take it?", button: "Decline job", buttonClass: "danger",
          fields: [{ name: "reason", label: "Reason", type: "textarea", placeholder: "Travelling that week" }], done: "Declined.",
          submit: function (v) { return Dash.post("/api/serviceman/requests/" + id + "/decline/", { reason: v.reason }); } }));
      }
      if (!box.childNodes.length) {
        box.appendChild(el("p", { class: "muted", text: primary ? "Nothing to do right now." : "You are the backup on this job." }));
      }
    }

    function load() {
      return Promise.all([Dash.get(path), Dash.get(path + "events/?page_size=100"),
        Dash.get("/api/notifications/?page_size=50")]).then(function (res) {
        var r = res[0];
        var question = res[2].results.filter(function (n) {
          return n.service_request_id === id && n.notification_type === "serviceman_consulted"; })[0];
        consulted = question ? question.message : null;
        Dash.statusBadge(r.status, $("request-status"));
        var facts = Dash.clear($("request-facts"));
        Dash.fact(facts, "Your part", r.primary_serviceman_id === Dash.userId ? "Primary" : "Backup");
        Dash.fact(facts, "Date", el("span", {}, Dash.date(r.booking_date), " ", Dash.emergencyBadge(r.is_emergency)));
        Dash.fact(facts, "Address", r.address);
        Dash.fact(facts, "Job", r.description);
        Dash.fact(facts, "Your estimate", el("span", { id: "estimate-fact", text: Dash.money(r.estimate_amount) }));
        actions(r);
        Dash.renderTimeline($("timeline"), res[1].results);
      });
    }
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });
})();

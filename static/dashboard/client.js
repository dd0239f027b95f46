/* The client's pages: bookings, booking (browse, date picker with the quote), one booking's story. */
(function () {
  "use strict";
  var el = Dash.el, $ = Dash.$;

  function categoriesById() {
    return Dash.get("/api/categories/?page_size=100").then(function (page) {
      var map = {};
      page.results.forEach(function (c) { map[c.id] = c; });
      return map;
    });
  }

  Dash.page("client-requests", function () {
    var table = $("requests-table");
    var categories = {};
    function load() {
      return Dash.getAll("/api/requests/?page_size=100", 200).then(function (rows) {
        Dash.fillTable(table, rows, function (r) {
          return el("tr", { dataset: { id: r.id, status: r.status } },
            el("td", {}, el("a", { href: Dash.requestLink(r.id), text: "#" + r.id })),
            el("td", {}, (categories[r.category_id] || {}).name || "", " ", Dash.emergencyBadge(r.is_emergency)),
            el("td", { text: Dash.date(r.booking_date) }),
            el("td", {}, Dash.statusBadge(r.status)),
            el("td", { text: Dash.money(r.booking_fee) }),
            el("td", { text: Dash.money(r.final_cost) }));
        });
      });
    }
    Dash.onRefresh(load);
    categoriesById().then(function (map) { categories = map; }).catch(Dash.fail).then(load).catch(Dash.fail);
  });

  Dash.page("client-book", function () {
    var chosenCategory = null, chosenServiceman = null;
    var dateInput = $("booking-date"), emergency = $("is-emergency"), quoteBox = $("quote"), confirm = $("confirm-booking");
    var today = new Date();
    dateInput.min = new Date(today.getTime() - today.getTimezoneOffset() * 60000).toISOString().slice(0, 10);

    function stars(rating, count) {
      return count ? "★ " + Number(rating).toFixed(2) + " (" + count + ")" : "No ratings yet";
    }

    function loadServicemen() {
      var grid = $("servicemen");
      return Dash.get("/api/categories/" + chosenCategory.id + "/servicemen/?page_size=50&ordering=" + $("ordering").value)
        .then(function (page) {
          Dash.clear(grid);
          var any = el("button", { type: "button", class: "pick" + (chosenServiceman ? "" : " chosen"), id: "pick-any" },
            el("strong", { text: "Any available serviceman" }), el("span", { class: "muted small", text: "An admin picks the best fit." }));
          any.addEventListener("click", function () { choose(null, any); });
          grid.appendChild(any);
          page.results.forEach(function (s) {
            var card = el("button", { type: "button", class: "pick" + (chosenServiceman && chosenServiceman.id === s.id ? " chosen" : ""),
              dataset: { servicemanId: s.id } },
              el("strong", { text: s.full_name }),
              el("span", { class: "rating", text: stars(s.rating, s.rating_count) }),
              el("span", { class: "muted small", text: s.jobs_completed + " jobs done · " + s.years_of_experience + " yrs" }),
              el("span", { class: "availability " + (s.is_available ? "yes" : "no"),
                text: s.is_available ? "Available" : "Busy" + (s.active_jobs ? " (" + s.active_jobs + " active)" : "") }),
              s.bio ? el("span", { class: "muted small bio", text: s.bio }) : null);
            card.addEventListener("click", function () { choose(s, card); });
            grid.appendChild(card);
          });
        });
    }

    function choose(serviceman, card) {
      chosenServiceman = serviceman;
      Array.prototype.forEach.call(document.querySelectorAll("#servicemen .pick"), function (c) { c.classList.remove("chosen"); });
      card.classList.add("chosen");
      $("chosen-serviceman").textContent = serviceman ? "Serviceman: " + serviceman.full_name + " (preferred)." : "Serviceman: assigned by us.";
      $("booking-section").hidden = false;
    }

    Dash.get("/api/categories/?page_size=100").then(function (page) {
      var list = $("categories");
      page.results.forEach(function (c) {
        var chip = el("button", { type: "button", class: "chip", role: "listitem", dataset: { categoryId: c.id }, title: c.description, text: c.name });
        chip.addEventListener("click", function () {
          chosenCategory = c;
          chosenServiceman = null;
          Array.prototype.forEach.call(list.children, function (x) { x.classList.remove("active"); });
          chip.classList.add("active");
          $("servicemen-section").hidden = false;
          $("booking-section").hidden = false;
          loadServicemen().catch(Dash.fail);
        });
        list.appendChild(chip);
      });
    }).catch(Dash.fail);
    $("ordering").addEventListener("change", function () { loadServicemen().catch(Dash.fail); });

    // The quote: the emergency flag and the fee are shown before the booking is confirmed.
    var quoted = null;
    function quote() {
      confirm.disabled = true;
      quoted = null;
      if (!dateInput.value) {
        quoteBox.dataset.state = "empty";
        quoteBox.textContent = "Pick a date to see the booking fee.";
        return;
      }
      var asked = dateInput.value + "|" + emergency.checked;
      Dash.get("/api/requests/quote/?booking_date=" + dateInput.value + (emergency.checked ? "&is_emergency=true" : ""))
        .then(function (q) {
          if (asked !== dateInput.value + "|" + emergency.checked) return; // a newer choice is on its way
          quoted = q;
          quoteBox.dataset.state = q.is_emergency ? "emergency" : "standard";
          Dash.clear(quoteBox).appendChild(el("span", {},
            q.is_emergency ? el("span", { class: "tag emergency", id: "quote-emergency", text: "Emergency" })
              : el("span", { class: "tag", id: "quote-standard", text: "Standard" }),
            " Booking fee ", el("strong", { id: "quote-fee", text: Dash.money(q.booking_fee) }),
            q.auto_flagged_emergency ? el("span", { class: "muted small", text: " — less than two days ahead counts as an emergency." }) : null));
          confirm.disabled = false;
        })
        .catch(function (err) {
          quoteBox.dataset.state = "error";
          quoteBox.textContent = err.fields && err.fields.booking_date ? err.fields.booking_date.join(" ") : err.message;
        });
    }
    dateInput.addEventListener("change", quote);
    dateInput.addEventListener("input", quote);
    emergency.addEventListener("change", quote);

    $("booking-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (!quoted || !chosenCategory) return;
      confirm.disabled = true;
      var body = { category_id: chosenCategory.id, booking_date: dateInput.value, address: $("address").value,
        description: $("description").value };
      if (emergency.checked) body.is_emergency = true;
      if (chosenServiceman) body.serviceman_id = chosenServiceman.id;
      Dash.post("/api/requests/", body).then(function (request) {
        location.assign(Dash.requestLink(request.id));
      }).catch(function (err) { Dash.fail(err); confirm.disabled = false; });
    });
  });

  Dash.page("client-request", function () {
    var id = Dash.requestId;
    var path = "/api/requests/" + id + "/";

    function pay(paymentType) {
      // The checkout opens beside the dashboard; this page updates itself when the payment lands.
      var tab = window.open("", "_blank");
      if (tab) tab.opener = null; // the checkout page gets no handle on the dashboard
      return Dash.post("/api/payments/initialize/", { service_request_id: id, payment_type: paymentType }).then(function (p) {
        if (tab) tab.location = p.authorization_url; else location.assign(p.authorization_url);
        Dash.toast("Checkout opened: " + Dash.money(p.amount) + ". This page updates when it is paid.", "info");
      }, function (err) { if (tab) tab.close(); throw err; });
    }

    function actions(r, negotiations) {
      var box = Dash.clear($("request-actions"));
      var s = r.status;
      if (s === "PENDING_PAYMENT") {
        box.appendChild(el("div", { class: "action" }, el("p", {}, "Pay the booking fee of ", el("strong", { text: Dash.money(r.booking_fee) }),
          " and an admin assigns your serviceman."), Dash.button("Pay booking fee", "pay-booking-fee", function () { return pay("BOOKING_FEE"); })));
      }
      if (s === "AWAITING_CLIENT_APPROVAL") {
        box.appendChild(el("div", { class: "action" }, el("p", {}, "The final cost is ", el("strong", { id: "final-cost", text: Dash.money(r.final_cost) }), "."),
          Dash.button("Approve cost", "approve-cost", function () { return Dash.post(path + "approve-cost/"); })));
      }
      if (s === "AWAITING_CLIENT_APPROVAL" || s === "NEGOTIATING") {
        box.appendChild(Dash.form({ id: "counter-offer", title: "Propose another amount", button: "Send offer", buttonClass: "secondary",
          fields: [{ name: "proposed_amount", label: "Amount (₦)", type: "number", step: "0.01", min: "0.01" },
            { name: "message", label: "Message", type: "textarea", required: false, placeholder: "Can you do it for less?" }],
          done: "Offer sent.",
          submit: function (v) { return Dash.post(path + "negotiations/", { proposed_amount: Number(v.proposed_amount).toFixed(2), message: v.message }); } }));
      }
      if (s === "AWAITING_PAYMENT") {
        box.appendChild(el("div", { class: "action" }, el("p", {}, "Agreed: ", el("strong", { text: Dash.money(r.final_cost) }), ". Pay to start the work."),
          Dash.button("Pay final cost", "pay-final", function () { return pay("FINAL_PAYMENT"); })));
      }
      if (s === "COMPLETED") {
        box.appendChild(el("div", { id: "rating-slot" }));
        Dash.get("/api/servicemen/" + r.primary_serviceman_id + "/ratings/?page_size=100").then(function (page) {
          var mine = page.results.filter(function (x) { return x.service_request_id === id; })[0];
          var slot = $("rating-slot");
          if (!slot) return;
          if (mine) {
            slot.appendChild(el("p", { id: "rated" }, "You rated this job ", el("strong", { text: "★".repeat(mine.rating) }), mine.review ? " — " + mine.review : ""));
          } else {
            slot.appendChild(Dash.form({ id: "rating-form", title: "Rate the job", button: "Send rating", done: "Thank you for rating.",
              fields: [{ name: "rating", label: "Stars", type: "select", options: [5, 4, 3, 2, 1].map(function (n) { return { value: n, label: "★".repeat(n) }; }) },
                { name: "review", label: "Review", type: "textarea", required: false, placeholder: "Quick and tidy" }],
              submit: function (v) { return Dash.post(path + "rating/", { rating: Number(v.rating), review: v.review }); } }));
          }
        }).catch(Dash.fail);
      }
      if (["PENDING_PAYMENT", "PENDING_ADMIN_ASSIGNMENT"].indexOf(s) >= 0) {
        box.appendChild(Dash.form({ id: "cancel-form", title: "Cancel this booking", button: "Cancel booking", buttonClass: "danger",
          fields: [{ name: "reason", label: "Reason", type: "textarea", placeholder: "Fixed it myself" }], done: "Booking cancelled.",
          submit: function (v) { return Dash.post(path + "cancel/", { reason: v.reason }); } }));
        // What cancelling now would refund and keep, where the server has the cancellation policy.
        Dash.optional(Dash.get(path + "cancellation-quote/")).then(function (q) {
          var form = $("cancel-form");
          if (!q || !form) return;
          form.parentNode.insertBefore(el("p", { class: "small", id: "cancellation-quote" }, "Cancelling now refunds ",
            el("strong", { text: Dash.money(q.refund_amount) }), " and keeps " + Dash.money(q.kept_amount) +
            (q.reason ? ": " + q.reason : ".")), form);
        }).catch(function () { /* the quote is a courtesy; cancelling still works without it */ });
      }
      if (!box.childNodes.length) box.appendChild(el("p", { class: "muted", text: waiting(s) }));
      Dash.renderNegotiations(negotiations, s, {
        proposer: function (n) { return n.proposed_by_id === Dash.userId ? "You" : "Serviceman team"; },
        answerable: function (n) { return n.proposed_by_id !== Dash.userId; } });
    }

    function waiting(s) {
      return {
        PENDING_ADMIN_ASSIGNMENT: "Paid. An admin is assigning your serviceman.",
        ASSIGNED: "Your serviceman is assigned and will inspect the job.",
        SERVICEMAN_INSPECTED: "The serviceman has inspected; the final cost follows shortly.",
        PAYMENT_CONFIRMED: "Paid. Work starts soon.",
        IN_PROGRESS: "Work is in progress.",
        COMPLETED_BY_SERVICEMAN: "The serviceman says it is done; an admin confirms with you.",
        CANCELLED: "This booking was cancelled.",
      }[s] || "";
    }

    function load() {
      return Promise.all([Dash.get(path), Dash.get(path + "events/?page_size=100"), Dash.get(path + "negotiations/?page_size=100"),
        Dash.get("/api/payments/?page_size=100&service_request_id=" + id), categoriesById()]).then(function (res) {
        var r = res[0];
        Dash.statusBadge(r.status, $("request-status"));
        var facts = Dash.clear($("request-facts"));
        Dash.fact(facts, "Service", (res[4][r.category_id] || {}).name);
        Dash.fact(facts, "Date", el("span", {}, Dash.date(r.booking_date), " ", Dash.emergencyBadge(r.is_emergency)));
        Dash.fact(facts, "Address", r.address);
        Dash.fact(facts, "Job", r.description);
        Dash.fact(facts, "Booking fee", Dash.money(r.booking_fee));
        Dash.fact(facts, "Final cost", el("span", { id: "final-cost-fact", text: Dash.money(r.final_cost) }));
        actions(r, res[2].results);
        Dash.renderTimeline($("timeline"), res[1].results);
        Dash.fillList($("payments"), res[3].results, function (p) {
          return el("li", { dataset: { status: p.status } }, Dash.words(p.payment_type) + " " + Dash.money(p.amount) + " · ",
            el("span", { class: "tag", text: Dash.words(p.status) }), " ", el("span", { class: "muted small", text: Dash.datetime(p.paid_at || p.created_at) }));
        });
      });
    }
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });
})();

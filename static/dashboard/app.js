/* The dashboard's core: the REST helper (cookie session + XSRF header), small DOM helpers, the
 * notification bell and the live socket. Role pages (client.js, admin.js, serviceman.js) register
 * with Dash.page(name, init) and refresh through Dash.onRefresh(fn). Plain JS, no build step. */
(function () {
  "use strict";

  var body = document.body;
  var xsrf = document.querySelector('meta[name="xsrf-token"]').content;
  var Dash = (window.Dash = {
    role: body.dataset.role,
    userId: Number(body.dataset.userId),
    requestId: body.dataset.requestId ? Number(body.dataset.requestId) : null,
  });

  // --- REST ------------------------------------------------------------------------------------

  Dash.api = function (method, path, data) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      options.headers["X-XSRFToken"] = xsrf; // the session cookie alone never changes anything
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(data || {});
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 401) {
        location.assign("/app/sign-in/?next=" + encodeURIComponent(location.pathname));
      }
      return response.text().then(function (text) {
        var json = text ? JSON.parse(text) : null;
        if (!response.ok) {
          var error = (json && json.error) || {};
          var err = new Error(error.message || response.statusText || "Request failed");
          err.status = response.status;
          err.code = error.code;
          err.fields = error.fields || {};
          throw err;
        }
        return json;
      });
    });
  };
  Dash.get = function (path) { return Dash.api("GET", path); };
  Dash.post = function (path, data) { return Dash.api("POST", path, data); };
  Dash.patch = function (path, data) { return Dash.api("PATCH", path, data); };

  /** Every page of a paginated list (bounded: dashboards show at most `max` rows). */
  Dash.getAll = function (path, max) {
    max = max || 500;
    var rows = [];
    function next(url) {
      return Dash.get(url).then(function (page) {
        rows = rows.concat(page.results);
        if (page.next && rows.length < max) {
          var u = new URL(page.next, location.href);
          return next(u.pathname + u.search);
        }
        return rows;
      });
    }
    return next(path);
  };

  /** An endpoint another part of the product may not serve yet (404 "No such endpoint."): show
   * the page's #unavailable notice instead of an error. Resolves to null in that case. */
  Dash.optional = function (promise) {
    return promise.catch(function (err) {
      if (err.status === 404 && err.code === "not_found" && /endpoint/i.test(err.message)) {
        var notice = document.getElementById("unavailable");
        if (notice) notice.hidden = false;
        return null;
      }
      throw err;
    });
  };

  // --- DOM helpers -----------------------------------------------------------------------------

  /** el("a", {href: "/x", class: "y", text: "z", onclick: fn, dataset: {...}}, child, ...) */
  Dash.el = function (tag, attrs) {
    var node = document.createElement(tag);
    attrs = attrs || {};
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      (Array.isArray(child) ? child : [child]).forEach(function (c) {
        node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
      });
    }
    return node;
  };
  var el = Dash.el;
  Dash.$ = function (id) { return document.getElementById(id); };
  Dash.clear = function (node) { while (node.firstChild) node.removeChild(node.firstChild); return node; };

  Dash.money = function (value) {
    if (value === null || value === undefined || value === "") return "—";
    return "₦" + Number(value).toLocaleString("en-NG", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  };
  Dash.date = function (iso) {
    if (!iso) return "—";
    return new Date(iso.length === 10 ? iso + "T00:00:00" : iso).toLocaleDateString("en-GB",
      { day: "numeric", month: "short", year: "numeric" });
  };
  Dash.datetime = function (iso) {
    return iso ? new Date(iso).toLocaleString("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }) : "—";
  };
  Dash.words = function (code) {
    return String(code || "").toLowerCase().replace(/_/g, " ").replace(/^./, function (c) { return c.toUpperCase(); });
  };
  Dash.statusBadge = function (status, node) {
    node = node || el("span");
    node.className = "status s-" + String(status).toLowerCase();
    node.dataset.status = status;
    node.textContent = Dash.words(status);
    return node;
  };
  Dash.emergencyBadge = function (isEmergency) {
    return isEmergency ? el("span", { class: "tag emergency", text: "Emergency" }) : null;
  };

  /** Fill a table's body with one row per item; its data-empty text when there are none. */
  Dash.fillTable = function (table, items, row) {
    var tbody = Dash.clear(table.tBodies[0]);
    if (!items.length) {
      var cols = table.tHead ? table.tHead.rows[0].cells.length : 1;
      tbody.appendChild(el("tr", { class: "empty" }, el("td", { colspan: cols, text: table.dataset.empty || "Nothing here." })));
      return;
    }
    items.forEach(function (item) { tbody.appendChild(row(item)); });
  };
  Dash.fillList = function (list, items, item) {
    Dash.clear(list);
    if (!items.length && list.dataset.empty) list.appendChild(el("li", { class: "empty", text: list.dataset.empty }));
    items.forEach(function (x) { list.appendChild(item(x)); });
  };

  Dash.toast = function (message, kind) {
    var node = el("div", { class: "toast " + (kind || "info"), role: "status", text: message });
    Dash.$("toasts").appendChild(node);
    setTimeout(function () { node.remove(); }, 6000);
  };
  Dash.fail = function (err) {
    var fields = err && err.fields ? Object.keys(err.fields).map(function (f) { return f + ": " + err.fields[f].join(" "); }) : [];
    Dash.toast((err && err.message ? err.message : String(err)) + (fields.length ? " (" + fields.join("; ") + ")" : ""), "error");
  };

  /** A small form: fields [{name, label, type, ...}], a button; submit(values) returns a promise. */
  Dash.form = function (options) {
    var form = el("form", { class: "stack action-form", id: options.id });
    (options.fields || []).forEach(function (f) {
      var input;
      if (f.type === "select") {
        input = el("select", { name: f.name, id: options.id + "-" + f.name, required: f.required !== false });
        (f.options || []).forEach(function (o) { input.appendChild(el("option", { value: o.value, text: o.label })); });
      } else if (f.type === "textarea") {
        input = el("textarea", { name: f.name, id: options.id + "-" + f.name, rows: 2, maxlength: f.maxlength || 2000,
          required: f.required !== false, placeholder: f.placeholder });
      } else if (f.type === "checkbox") {
        input = el("input", { type: "checkbox", name: f.name, id: options.id + "-" + f.name });
        form.appendChild(el("label", { class: "inline-check" }, input, " " + f.label));
        return;
      } else {
        input = el("input", { type: f.type || "text", name: f.name, id: options.id + "-" + f.name, step: f.step,
          min: f.min, max: f.max, required: f.required !== false, placeholder: f.placeholder, value: f.value });
      }
      form.appendChild(el("label", {}, f.label + " ", input));
    });
    var button = el("button", { type: "submit", class: options.buttonClass || "primary", id: options.id + "-submit", text: options.button });
    form.appendChild(button);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var values = {};
      Array.prototype.forEach.call(form.elements, function (input) {
        if (!input.name) return;
        values[input.name] = input.type === "checkbox" ? input.checked : input.value;
      });
      button.disabled = true;
      Promise.resolve(options.submit(values)).then(function () {
        if (options.done) Dash.toast(options.done, "ok");
        Dash.refresh();
      }).catch(Dash.fail).then(function () { button.disabled = false; });
    });
    return el("div", { class: "action" }, options.title ? el("h3", { text: options.title }) : null,
      options.help ? el("p", { class: "muted small", text: options.help }) : null, form);
  };
  /** One button that posts and refreshes. */
  Dash.button = function (label, id, action, cls) {
    var button = el("button", { type: "button", class: cls || "primary", id: id, text: label });
    button.addEventListener("click", function () {
      button.disabled = true;
      Promise.resolve(action()).then(function () { Dash.refresh(); }).catch(Dash.fail)
        .then(function () { button.disabled = false; });
    });
    return button;
  };

  /** A request's timeline (GET /api/requests/{id}/events/). */
  Dash.renderTimeline = function (list, events) {
    Dash.fillList(list, events, function (e) {
      var change = e.from_status || e.to_status ? Dash.words(e.from_status || "new") + " → " + Dash.words(e.to_status) : "";
      return el("li", { dataset: { type: e.type } }, el("strong", { text: Dash.words(e.type) }),
        change && e.from_status !== e.to_status ? el("span", { class: "muted", text: " " + change }) : null,
        el("time", { class: "muted small", datetime: e.created_at, text: Dash.datetime(e.created_at) }));
    });
  };
  /** A request's price proposals (GET /api/requests/{id}/negotiations/) in #negotiations, for the
   * admin's and the client's request pages. `options.proposer(n)` labels who proposed it;
   * `options.answerable(n)` whether this page answers it (Accept / Reject while the request is
   * NEGOTIATING and it is PENDING); `options.counter` adds the counter-offer form to those. */
  Dash.renderNegotiations = function (items, status, options) {
    Dash.$("negotiations-section").hidden = !items.length;
    Dash.fillList(Dash.$("negotiations"), items, function (n) {
      var open = n.status === "PENDING" && options.answerable(n) && status === "NEGOTIATING";
      var answer = "/api/negotiations/" + n.id + "/";
      return el("li", { dataset: { id: n.id, status: n.status } },
        el("strong", { text: options.proposer(n) + ": " + Dash.money(n.proposed_amount) }), " ",
        el("span", { class: "tag", text: Dash.words(n.status) }), n.message ? el("div", { class: "muted", text: n.message }) : null,
        open ? el("div", { class: "row" },
          Dash.button("Accept", "accept-" + n.id, function () { return Dash.post(answer + "accept/"); }),
          Dash.button("Reject", "reject-" + n.id, function () { return Dash.post(answer + "reject/"); }, "secondary")) : null,
        open && options.counter ? Dash.form({ id: "counter-" + n.id, button: "Counter", buttonClass: "secondary",
          fields: [{ name: "proposed_amount", label: "Amount (₦)", type: "number", step: "0.01", min: "0.01" },
            { name: "message", label: "Message", type: "textarea", required: false }],
          submit: function (v) { return Dash.post(answer + "counter/",
            { proposed_amount: Number(v.proposed_amount).toFixed(2), message: v.message }); } }) : null);
    });
  };
  Dash.fact = function (dl, label, value) {
    dl.appendChild(el("dt", { text: label }));
    dl.appendChild(el("dd", {}, value === null || value === undefined ? "—" : value));
  };
  Dash.requestLink = function (id) {
    var base = { client: "/app/client/requests/", admin: "/app/admin/requests/", serviceman: "/app/serviceman/jobs/" }[Dash.role];
    return base + id + "/";
  };

  // --- pages and live refresh ------------------------------------------------------------------

  var pages = {};
  var refreshers = [];
  var notificationListeners = [];
  Dash.page = function (name, init) { pages[name] = init; };
  /** fn() runs when something may have changed: a notification arrived or the socket came back. */
  Dash.onRefresh = function (fn) { refreshers.push(fn); };
  Dash.onNotification = function (fn) { notificationListeners.push(fn); };
  var refreshTimer = null;
  Dash.refresh = function () {
    clearTimeout(refreshTimer); // a burst of pushes costs one reload
    refreshTimer = setTimeout(function () {
      refreshers.forEach(function (fn) { Promise.resolve().then(fn).catch(Dash.fail); });
    }, 100);
  };

  // --- notifications: the bell, the panel and the socket ---------------------------------------

  var bell = Dash.$("bell");
  var panel = Dash.$("notification-panel");
  var badge = Dash.$("unread-count");
  var live = Dash.$("live-status");
  var recent = []; // newest first, what the panel shows
  var lastSeenId = 0; // the highest notification id this page has: resume from it after a drop

  function setUnread(count) {
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.dataset.count = String(count);
    badge.hidden = count === 0;
  }

  function notificationItem(n, onRead) {
    var item = el("li", { class: n.is_read ? "read" : "unread", dataset: { id: n.id, type: n.notification_type } },
      el("div", { class: "n-title" }, n.payload && n.payload.is_emergency ? el("span", { class: "tag emergency", text: "!" }) : null,
        el("strong", { text: n.title })),
      el("div", { class: "n-message", text: n.message }),
      el("div", { class: "n-meta muted small" },
        el("time", { datetime: n.created_at, text: Dash.datetime(n.created_at) }),
        n.service_request_id ? el("a", { href: Dash.requestLink(n.service_request_id), text: " · #" + n.service_request_id }) : null,
        n.is_read ? null : el("button", { type: "button", class: "link mark-read", text: "Mark read", onclick: function (ev) {
          ev.stopPropagation();
          Dash.post("/api/notifications/" + n.id + "/read/").then(function (updated) {
            n.is_read = true;
            if (onRead) onRead(updated);
            renderPanel();
          }).catch(Dash.fail);
        } })));
    return item;
  }

  function renderPanel() {
    var list = Dash.$("notification-list");
    Dash.clear(list);
    if (!recent.length) list.appendChild(el("li", { class: "empty", text: "No notifications yet." }));
    recent.slice(0, 20).forEach(function (n) { list.appendChild(notificationItem(n)); });
  }

  function remember(n) {
    if (n.id > lastSeenId) lastSeenId = n.id;
    for (var i = 0; i < recent.length; i++) {
      if (recent[i].id === n.id) { recent[i] = n; return false; }
    }
    recent.push(n);
    recent.sort(function (a, b) { return b.id - a.id; });
    return true;
  }

  bell.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    bell.setAttribute("aria-expanded", String(!panel.hidden));
  });
  document.addEventListener("click", function (event) {
    if (!panel.hidden && !panel.contains(event.target) && !bell.contains(event.target)) {
      panel.hidden = true;
      bell.setAttribute("aria-expanded", "false");
    }
  });
  Dash.$("mark-all-read").addEventListener("click", function () {
    Dash.post("/api/notifications/read-all/").then(function () {
      recent.forEach(function (n) { n.is_read = true; });
      renderPanel();
      setUnread(0);
      Dash.refresh();
    }).catch(Dash.fail);
  });

  function setLive(state) {
    live.dataset.state = state;
    live.textContent = { live: "live", connecting: "connecting", offline: "reconnecting" }[state];
  }

  var socket = null;
  var attempts = 0;
  var reconnectTimer = null;
  var everReady = false;
  // A network that vanishes silently never closes the socket: ask for a pong now and then, and
  // treat a missing one as a drop.
  var HEARTBEAT_MS = 25000, PONG_WAIT_MS = 10000;
  var heartbeat = null, pongTimer = null;

  function stopHeartbeat() {
    clearInterval(heartbeat);
    clearTimeout(pongTimer);
    heartbeat = pongTimer = null;
  }

  function startHeartbeat(ws) {
    stopHeartbeat();
    heartbeat = setInterval(function () {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ type: "ping" }));
      pongTimer = setTimeout(function () { dropped(ws); }, PONG_WAIT_MS);
    }, HEARTBEAT_MS);
  }

  function dropped(ws) {
    if (socket !== ws) return;
    ws.onclose = ws.onmessage = null;
    socket = null;
    stopHeartbeat();
    try { ws.close(); } catch (e) { /* already closing */ }
    setLive("offline");
    scheduleReconnect();
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    setLive(everReady ? "offline" : "connecting");
    // The session cookie signs the socket in (same origin); no token ever reaches page script.
    var ws = socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/");
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "pong") {
        clearTimeout(pongTimer);
      } else if (message.type === "ready") {
        attempts = 0;
        startHeartbeat(ws);
        setUnread(message.unread_count);
        socket.send(JSON.stringify({ type: "resume", since: lastSeenId }));
        setLive("live");
        if (everReady) Dash.refresh(); // anything may have changed while we were away
        everReady = true;
      } else if (message.type === "notification") {
        var n = message.notification;
        if (remember(n)) {
          renderPanel();
          Dash.toast(n.title, n.payload && n.payload.is_emergency ? "emergency" : "info");
          notificationListeners.forEach(function (fn) { fn(n); });
          Dash.refresh();
        }
      } else if (message.type === "unread_count") {
        setUnread(message.count);
      }
    };
    socket.onclose = function (event) {
      socket = null;
      stopHeartbeat();
      if (event.code === 4001) { // the session ended (signed out elsewhere, password changed)
        location.assign("/app/sign-in/?next=" + encodeURIComponent(location.pathname));
        return;
      }
      setLive("offline");
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (reconnectTimer) return;
    // Exponential backoff with jitter, capped: a restarting server is not stampeded by every tab.
    var delay = Math.min(10000, 500 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
    attempts += 1;
    reconnectTimer = setTimeout(connect, delay);
  }
  Dash.reconnectNow = function () { if (!socket) connect(); };
  window.addEventListener("online", Dash.reconnectNow);

  function start() {
    Promise.all([Dash.get("/api/notifications/?page_size=20"), Dash.get("/api/notifications/unread-count/")])
      .then(function (results) {
        results[0].results.forEach(remember);
        renderPanel();
        setUnread(results[1].count);
      })
      .catch(Dash.fail)
      .then(connect);
    var init = pages[body.dataset.page];
    if (init) init();
  }

  // The notifications page (every role).
  Dash.page("notifications", function () {
    var list = Dash.$("notification-page-list");
    var unreadOnly = Dash.$("unread-only");
    function load() {
      return Dash.get("/api/notifications/?page_size=50" + (unreadOnly.checked ? "&is_read=false" : "")).then(function (page) {
        Dash.fillList(list, page.results, function (n) { return notificationItem(n, function () { load(); }); });
      });
    }
    unreadOnly.addEventListener("change", load);
    Dash.onRefresh(load);
    load().catch(Dash.fail);
  });

  document.addEventListener("DOMContentLoaded", start);
})();

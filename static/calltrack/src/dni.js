/*! calltrack DNI tag: shows each visitor its own tracking numbers in place of the page's numbers.
 *
 * <script async src="https://calltrack.example.com/static/calltrack/dni.js" data-pool="POOL_KEY"></script>
 *
 * Optional attributes: data-api (the calltrack base URL; default: where this script comes from),
 * data-number (the page's number to replace; default: the first tel: link's, else the first
 * number in the text), data-swap (several destinations, each from its own pool:
 * "sales=+14155550100, support=+18005550199"; an entry without "pool=" uses data-pool),
 * data-param-NAME="value" (a custom parameter; also window.calltrack_params = {...} set before
 * the tag, and the page URL's own query parameters). Numbers inserted into the page later
 * (single-page apps) are swapped too. Any failure leaves the page as it was.
 */
(function (w, d) {
  "use strict";
  var script = d.currentScript;
  if (!script || !w.fetch) return;
  var pool = script.getAttribute("data-pool");
  var api = (script.getAttribute("data-api") || new URL(script.src, d.baseURI).origin).replace(/\/+$/, "");
  var COOKIE = "_ct_vid";
  var KEYS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
    "gclid", "gbraid", "wbraid", "fbclid", "msclkid"];
  var MAX_CUSTOM = 30; // the API refuses more names than this in one request
  // Something that looks like a phone number: 7+ digits with the usual separators.
  var PHONE = /\+?\(?\d[\d ().\-\u00a0]{5,}\d/g;
  var SKIP = /^(SCRIPT|STYLE|NOSCRIPT|TEXTAREA|INPUT|SELECT|OPTION|TEMPLATE)$/;
  // One entry per destination: { pool, dest, swaps: [{n|a, t}], number, sessionId, timer, started, r }.
  var state = { swaps: [], entries: [] };
  w.calltrack = state;
  var seen = typeof WeakSet === "function" ? new WeakSet() : null;

  function digits(s) { return s.replace(/\D/g, ""); }
  // Same number when the digits agree, allowing one side a country code the other leaves out.
  function same(a, b) {
    a = digits(a); b = digits(b);
    return a.length > 6 && b.length > 6 && (a === b || (a.length > b.length ? a.slice(-b.length) === b : b.slice(-a.length) === a));
  }
  // The new number written the way `tpl` writes its number: "(800) 555-0199" -> "(415) 555-0123".
  function like(tpl, r) {
    var n = digits(tpl).length, nat = r.national, all = r.country_code + nat, use;
    if (n === nat.length) use = nat;
    else if (n === all.length) use = all;
    else if (n === nat.length + 1 && digits(tpl)[0] === "0") use = "0" + nat;
    else return r.formatted;
    var i = 0;
    return tpl.replace(/\d/g, function () { return use[i++]; });
  }

  function cookie() {
    var m = d.cookie.match(/(?:^|; )_ct_vid=([\w.-]{8,64})/);
    var id = m && m[1];
    if (!id) {
      var b = new Uint8Array(16);
      (w.crypto || w.msCrypto).getRandomValues(b);
      id = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    }
    // Refreshed on every page view: a year after the last visit.
    d.cookie = COOKIE + "=" + id + "; path=/; max-age=31536000; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
    return id;
  }

  function post(path, body) {
    return fetch(api + "/dni/v1/" + path, {
      method: "POST",
      // text/plain keeps the request "simple": no CORS preflight round trip.
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify(body),
      credentials: "omit",
      keepalive: true
    }).then(function (res) {
      return res.json().then(function (data) { data.status = res.status; return data; });
    });
  }

  // The destinations: data-swap's entries, else data-number, else the first tel: link, else the first number in the text.
  function destinations() {
    var swap = script.getAttribute("data-swap"), out = [];
    if (swap) {
      swap.split(",").forEach(function (item) {
        var eq = item.indexOf("="), key = eq > 0 ? item.slice(0, eq).trim() : pool, number = item.slice(eq + 1).trim();
        if (key && digits(number).length > 6) out.push({ pool: key, dest: number });
      });
      return out;
    }
    if (!pool) return out;
    var found = script.getAttribute("data-number");
    if (!found) {
      var link = d.querySelector('a[href^="tel:"]');
      if (link) found = decodeURIComponent(link.getAttribute("href").slice(4));
    }
    if (!found) {
      var m = (d.body.innerText || d.body.textContent || "").match(PHONE);
      found = m && m[0];
    }
    if (found) out.push({ pool: pool, dest: found });
    return out;
  }

  // Custom caller data for the pool's declared parameters: the page URL's other query parameters,
  // window.calltrack_params, then data-param-* (the last one wins). The API keeps only what the pool accepts.
  function custom() {
    var out = {}, count = 0;
    function put(k, v) {
      if (KEYS.indexOf(k) >= 0 || v === null || v === undefined || typeof v === "object") return;
      if (!(k in out)) { if (count >= MAX_CUSTOM) return; count++; }
      out[k] = typeof v === "string" ? v : String(v);
    }
    new URLSearchParams(location.search).forEach(function (v, k) { put(k, v); });
    var given = w.calltrack_params;
    if (given && typeof given === "object") Object.keys(given).forEach(function (k) { put(k, given[k]); });
    Array.prototype.forEach.call(script.attributes, function (a) {
      if (a.name.indexOf("data-param-") === 0) put(a.name.slice(11).replace(/-/g, "_"), a.value);
    });
    return out;
  }

  // Every place under `root` where `dest` appears (text and tel: links), with its original writing; skips places already found.
  function find(dest, root) {
    var found = [];
    if (root.nodeType === 3) {
      if (!(seen && seen.has(root)) && root.parentNode && !SKIP.test(root.parentNode.nodeName) && hits(root.nodeValue, dest)) found.push({ n: root, t: root.nodeValue });
      return found;
    }
    if (root.nodeType !== 1) return found;
    var walker = d.createTreeWalker(root, 4, null), node;
    while ((node = walker.nextNode())) {
      if (seen && seen.has(node)) continue;
      if (node.parentNode && SKIP.test(node.parentNode.nodeName)) continue;
      if (hits(node.nodeValue, dest)) found.push({ n: node, t: node.nodeValue });
    }
    var links = Array.prototype.slice.call(root.querySelectorAll('a[href^="tel:"]'));
    if (root.matches && root.matches('a[href^="tel:"]')) links.push(root);
    for (var i = 0; i < links.length; i++) {
      if (seen && seen.has(links[i])) continue;
      var href = links[i].getAttribute("href");
      if (same(decodeURIComponent(href.slice(4)), dest)) found.push({ a: links[i], t: href });
    }
    found.forEach(function (s) { if (seen) seen.add(s.n || s.a); });
    return found;
  }
  function hits(text, dest) {
    var m = text.match(PHONE) || [];
    for (var i = 0; i < m.length; i++) if (same(m[i], dest)) return true;
    return false;
  }
  function write(s, e, r) {
    if (s.a) s.a.setAttribute("href", "tel:" + like(decodeURIComponent(s.t.slice(4)), r).replace(/[^\d+]/g, ""));
    else s.n.nodeValue = s.t.replace(PHONE, function (m) { return same(m, e.dest) ? like(m, r) : m; });
  }
  function swap(e, r) {
    e.r = r;
    e.swaps.forEach(function (s) { write(s, e, r); });
    if (e === state.entries[0]) d.documentElement.setAttribute("data-calltrack-number", r.number);
  }

  function assign(e) {
    var q = new URLSearchParams(location.search), params = {};
    KEYS.forEach(function (k) { if (q.get(k)) params[k] = q.get(k); });
    return post("assign", {
      pool: e.pool,
      visitor_id: state.visitorId,
      page_url: location.href,
      referrer: d.referrer,
      params: params,
      custom: state.custom,
      destination: e.dest
    }).then(function (r) {
      if (r.status !== 200) throw new Error(r.error || "calltrack: no number");
      e.sessionId = r.session_id;
      e.number = r.number;
      if (e === state.entries[0]) { state.sessionId = r.session_id; state.number = r.number; }
      if (r.number && r.national) swap(e, r);
      if (r.session_id) beat(e, r.expires_at);  // no session (the pool's fallback number): nothing to keep alive
    });
  }

  // Heartbeats keep the session (and the number) while the page is open; a session taken over
  // by another visitor gets a new number.
  function beat(e, expires) {
    var left = Date.parse(expires) - Date.now();
    var wait = Math.max(5000, Math.min(60000, left / 2 || 60000));
    clearTimeout(e.timer);
    e.timer = setTimeout(function () {
      post("heartbeat", { pool: e.pool, visitor_id: state.visitorId, session_id: e.sessionId }).then(function (r) {
        if (r.status === 410) return assign(e);
        beat(e, r.status === 200 ? r.expires_at : "");
      }, function () { beat(e, ""); });
    }, wait);
  }

  // One assignment at a time per page: a visitor's destinations are few, and its requests then reach the server
  // in order (its visitor id and sessions are never decided by two racing requests).
  var queue = null;
  function begin(e) {
    e.started = true;
    queue = (queue || Promise.resolve()).then(function () { return assign(e); })
      .catch(function () { /* the page keeps its own number */ });
  }

  // Numbers inserted after load: swapped at once when their destination has a number, or its assignment starts.
  function watch() {
    if (!w.MutationObserver) return;
    new MutationObserver(function (records) {
      try {
        records.forEach(function (rec) {
          var roots = rec.type === "characterData" ? [rec.target] : Array.prototype.slice.call(rec.addedNodes);
          roots.forEach(function (root) {
            state.entries.forEach(function (e) {
              if (rec.type === "characterData" && e.r) {
                // A text we swapped, written back by the page (a re-render): swap it again.
                e.swaps.forEach(function (s) {
                  if (s.n === root && hits(root.nodeValue, e.dest)) { s.t = root.nodeValue; write(s, e, e.r); }
                });
              }
              var more = find(e.dest, root);
              if (!more.length) return;
              e.swaps.push.apply(e.swaps, more);
              if (e.r) more.forEach(function (s) { write(s, e, e.r); });
              else if (!e.started) begin(e);
            });
          });
        });
      } catch (err) { /* never break the page */ }
    }).observe(d.body, { childList: true, subtree: true, characterData: true });
  }

  function start() {
    try {
      state.entries = destinations().map(function (e) { e.swaps = []; return e; });
      if (!state.entries.length) return;
      state.dest = state.entries[0].dest;
      state.visitorId = cookie();
      state.custom = custom();
      state.entries.forEach(function (e) {
        e.swaps = find(e.dest, d.body);
        // A data-swap destination the page does not show yet waits until it appears.
        if (e.swaps.length || !script.getAttribute("data-swap")) begin(e);
      });
      state.swaps = state.entries[0].swaps;
      watch();
    } catch (e) { /* never break the page */ }
  }

  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start);
  else start();
})(window, document);

/*! calltrack DNI tag: shows each visitor its own tracking number in place of the page's number.
 *
 * <script async src="https://calltrack.example.com/static/calltrack/dni.js" data-pool="POOL_KEY"></script>
 *
 * Optional attributes: data-api (the calltrack base URL; default: where this script comes from),
 * data-number (the page's number to replace; default: the first tel: link's, else the first
 * number in the text). Any failure leaves the page as it was.
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
  // Something that looks like a phone number: 7+ digits with the usual separators.
  var PHONE = /\+?\(?\d[\d ().\-\u00a0]{5,}\d/g;
  var SKIP = /^(SCRIPT|STYLE|NOSCRIPT|TEXTAREA|INPUT|SELECT|OPTION|TEMPLATE)$/;
  var state = { swaps: [] };
  w.calltrack = state;
  if (!pool) return;

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

  // The page's own number: data-number, else the first tel: link, else the first number in the text.
  function destination() {
    var given = script.getAttribute("data-number");
    if (given) return given;
    var link = d.querySelector('a[href^="tel:"]');
    if (link) return decodeURIComponent(link.getAttribute("href").slice(4));
    var m = (d.body.innerText || d.body.textContent || "").match(PHONE);
    return m && m[0];
  }

  // Remember every place the destination appears (text and tel: links) with its original writing.
  function find(dest) {
    var walker = d.createTreeWalker(d.body, 4, null), node, found = [];
    while ((node = walker.nextNode())) {
      if (node.parentNode && SKIP.test(node.parentNode.nodeName)) continue;
      if (PHONE.test(node.nodeValue) && hits(node.nodeValue, dest)) found.push({ n: node, t: node.nodeValue });
      PHONE.lastIndex = 0;
    }
    var links = d.querySelectorAll('a[href^="tel:"]');
    for (var i = 0; i < links.length; i++) {
      var href = links[i].getAttribute("href");
      if (same(decodeURIComponent(href.slice(4)), dest)) found.push({ a: links[i], t: href });
    }
    return found;
  }
  function hits(text, dest) {
    var m = text.match(PHONE) || [];
    for (var i = 0; i < m.length; i++) if (same(m[i], dest)) return true;
    return false;
  }
  function swap(r) {
    state.swaps.forEach(function (s) {
      var out = s.t.replace(PHONE, function (m) { return same(m, state.dest) ? like(m, r) : m; });
      if (s.a) s.a.setAttribute("href", "tel:" + like(decodeURIComponent(s.t.slice(4)), r).replace(/[^\d+]/g, ""));
      else s.n.nodeValue = out;
    });
    d.documentElement.setAttribute("data-calltrack-number", r.number);
  }

  function assign() {
    var q = new URLSearchParams(location.search), params = {};
    KEYS.forEach(function (k) { if (q.get(k)) params[k] = q.get(k); });
    return post("assign", {
      pool: pool,
      visitor_id: state.visitorId,
      page_url: location.href,
      referrer: d.referrer,
      params: params,
      destination: state.dest
    }).then(function (r) {
      if (r.status !== 200) throw new Error(r.error || "calltrack: no number");
      state.sessionId = r.session_id;
      state.number = r.number;
      if (r.number && r.national) swap(r);
      if (r.session_id) beat(r.expires_at);  // no session (the pool's fallback number): nothing to keep alive
    });
  }

  // Heartbeats keep the session (and the number) while the page is open; a session taken over
  // by another visitor gets a new number.
  function beat(expires) {
    var left = Date.parse(expires) - Date.now();
    var wait = Math.max(5000, Math.min(60000, left / 2 || 60000));
    clearTimeout(state.timer);
    state.timer = setTimeout(function () {
      post("heartbeat", { pool: pool, visitor_id: state.visitorId, session_id: state.sessionId }).then(function (r) {
        if (r.status === 410) return assign();
        beat(r.status === 200 ? r.expires_at : "");
      }, function () { beat(""); });
    }, wait);
  }

  function start() {
    try {
      state.dest = destination();
      if (!state.dest) return;
      state.visitorId = cookie();
      state.swaps = find(state.dest);
      assign().catch(function () { /* the page keeps its own number */ });
    } catch (e) { /* never break the page */ }
  }

  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start);
  else start();
})(window, document);

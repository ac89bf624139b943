/* calltrack DNI tag: shows each visitor its own tracking numbers in place of the page's numbers.
 *
 * Readable source: pages load the minified build, static/calltrack/dni.js, made from this file by
 * `make dni` (scripts/build_dni.py); a test fails when the two differ or the build passes 3 KB gzipped.
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
 *
 * Two guarantees, each with a browser test (tests/numbers/test_dni_tag_safety.py):
 * - The page never freezes: the tag never writes a text or link that would not change, its observer
 *   drops the records of its own writes, a batch of many added nodes costs one pass over the page,
 *   and past MAX_BATCHES batches of writes in a second the page's own numbers win.
 * - Page content cannot configure the tag (DOM clobbering: <img name="currentScript" data-api=...>
 *   shadows document.currentScript): the tag reads document's properties from Document.prototype,
 *   its settings only from a real <script> element, and window.calltrack_params only as a plain object.
 */
(function (w, d) {
  "use strict";
  var DOC = w.Document && Document.prototype;
  // document's own property or bound method, as Document.prototype defines it: page elements with a
  // name ("<form name=cookie>") shadow document.cookie, document.body, ... but never the prototype.
  function doc(name, value) {
    var p = Object.getOwnPropertyDescriptor(DOC, name);
    if (arguments.length > 1) return p.set.call(d, value);
    return p.get ? p.get.call(d) : p.value.bind(d);
  }
  // This tag's <script>: the one running now, else (a module script has none) the only script whose src
  // is a dni.js; none, or several (one may be page content), and the tag does nothing.
  function own() {
    var s = doc("currentScript"), all = doc("getElementsByTagName")("script"), mine = [];
    if (s instanceof HTMLScriptElement) return s;
    for (var i = 0; i < all.length; i++) if (/\/dni(\.[\w-]+)?\.js([?#]|$)/.test(all[i].src)) mine.push(all[i]);
    return mine.length === 1 ? mine[0] : null;
  }
  var script;
  try { script = DOC && own(); } catch (err) { /* an old browser: the page keeps its numbers */ }
  if (!script || !w.fetch) return;
  function attr(name) { return script.getAttribute(name); }
  var pool = attr("data-pool");
  var api = (attr("data-api") || new URL(script.src).origin).replace(/\/+$/, "");
  var KEYS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
    "gclid", "gbraid", "wbraid", "fbclid", "msclkid"];
  var MAX_CUSTOM = 30; // the API refuses more names than this in one request
  var MAX_ROOTS = 200; // added nodes in one batch past which one pass over the page is cheaper
  // Batches of writes per second past which the page's own numbers win: a page (or another tag) that writes its
  // number back on every change, as we write ours, would otherwise keep both observers busy forever. A big render
  // is one batch, however many places it shows the number in.
  var MAX_BATCHES = 50;
  // Something that looks like a phone number: 7+ digits with the usual separators.
  var PHONE = /\+?\(?\d[\d ().\-\u00a0]{5,}\d/g;
  var SKIP = /^(SCRIPT|STYLE|NOSCRIPT|TEXTAREA|INPUT|SELECT|OPTION|TEMPLATE)$/;
  var TEL = 'a[href^="tel:"]';
  // One entry per destination: { pool, dest, swaps: [{n|a, t, w}], number, sessionId, timer, started, r }.
  var state = { swaps: [], entries: [] };
  w.calltrack = state;
  var seen = typeof WeakSet === "function" ? new WeakSet() : null;
  var observer = null, body, second = 0, batches = 0, batch = 0, counted;

  function digits(s) { return s.replace(/\D/g, ""); }
  function decode(s) { try { return decodeURIComponent(s); } catch (err) { return s; } }
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
    var m = doc("cookie").match(/(?:^|; )_ct_vid=([\w.-]{8,64})/);
    var id = m && m[1];
    if (!id) {
      var b = new Uint8Array(16);
      w.crypto.getRandomValues(b);
      id = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    }
    // Refreshed on every page view: a year after the last visit.
    doc("cookie", "_ct_vid=" + id + "; path=/; max-age=31536000; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : ""));
    return id;
  }

  function post(path, data) {
    return fetch(api + "/dni/v1/" + path, {
      method: "POST",
      // text/plain keeps the request "simple": no CORS preflight round trip.
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify(data),
      credentials: "omit",
      keepalive: true
    }).then(function (res) {
      return res.json().then(function (r) { r.status = res.status; return r; });
    });
  }

  // The destinations: data-swap's entries, else data-number, else the first tel: link, else the first number in the text.
  function destinations() {
    var swap = attr("data-swap"), out = [];
    if (swap) {
      swap.split(",").forEach(function (item) {
        var eq = item.indexOf("="), key = eq > 0 ? item.slice(0, eq).trim() : pool, number = item.slice(eq + 1).trim();
        if (key && digits(number).length > 6) out.push({ pool: key, dest: number });
      });
      return out;
    }
    if (!pool) return out;
    var found = attr("data-number");
    if (!found) {
      var link = doc("querySelector")(TEL);
      if (link) found = decode(link.getAttribute("href").slice(4));
    }
    if (!found) {
      var m = (body.innerText || body.textContent || "").match(PHONE);
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
      if (KEYS.indexOf(k) >= 0 || !/^(string|number|boolean)$/.test(typeof v)) return;
      if (!(k in out)) { if (count >= MAX_CUSTOM) return; count++; }
      out[k] = String(v);
    }
    new URLSearchParams(location.search).forEach(function (v, k) { put(k, v); });
    // Only a plain object the page's code set: an element with id="calltrack_params" is a window property too.
    var given = w.calltrack_params;
    if (Object.prototype.toString.call(given) === "[object Object]") Object.keys(given).forEach(function (k) { put(k, given[k]); });
    Array.prototype.forEach.call(script.attributes, function (a) {
      if (a.name.indexOf("data-param-") === 0) put(a.name.slice(11).replace(/-/g, "_"), a.value);
    });
    return out;
  }

  // Every place under `root` where `dest` appears (text and tel: links), with its original writing; skips places already found.
  function find(dest, root) {
    var found = [], node, i;
    if (root.nodeType === 3) {
      if (!(seen && seen.has(root)) && root.parentNode && !SKIP.test(root.parentNode.nodeName) && hits(root.nodeValue, dest)) found.push({ n: root, t: root.nodeValue });
    } else if (root.nodeType === 1) {
      var walker = doc("createTreeWalker")(root, 4, null);
      while ((node = walker.nextNode())) {
        if (seen && seen.has(node)) continue;
        if (node.parentNode && SKIP.test(node.parentNode.nodeName)) continue;
        if (hits(node.nodeValue, dest)) found.push({ n: node, t: node.nodeValue });
      }
      var links = Array.prototype.slice.call(root.querySelectorAll(TEL));
      if (root.matches && root.matches(TEL)) links.push(root);
      for (i = 0; i < links.length; i++) {
        if (seen && seen.has(links[i])) continue;
        var href = links[i].getAttribute("href");
        if (same(decode(href.slice(4)), dest)) found.push({ a: links[i], t: href });
      }
    }
    found.forEach(function (s) { if (seen) seen.add(s.n || s.a); });
    return found;
  }
  function hits(text, dest) {
    var m = text.match(PHONE) || [];
    for (var i = 0; i < m.length; i++) if (same(m[i], dest)) return true;
    return false;
  }
  // Shows r's number where `s` shows the destination. Writes nothing that would not change: writing a text
  // node its own text is still a mutation, and an observer that answers it with the same write never stops.
  function write(s, e, r) {
    var a = s.a, now = a ? a.getAttribute("href") || "" : s.n.nodeValue, next;
    if (a ? same(decode(now.slice(4)), e.dest) : hits(now, e.dest)) s.t = now; // (again) the page's own writing
    else if (now !== s.w) return; // the page put something else there since: its own, left alone
    next = a ? "tel:" + like(decode(s.t.slice(4)), r).replace(/[^\d+]/g, "")
      : s.t.replace(PHONE, function (m) { return same(m, e.dest) ? like(m, r) : m; });
    s.w = next;
    if (next === now) return;
    if (counted !== batch) {
      counted = batch;
      if (Date.now() - second > 1000) { second = Date.now(); batches = 0; }
      batches++;
    }
    if (batches > MAX_BATCHES) return;
    if (a) a.setAttribute("href", next);
    else s.n.nodeValue = next;
  }
  // Our own writes are kept from our observer: records still pending are handled after them, and the records
  // the writes make are dropped.
  function swap(e, r) {
    var pending = observer ? observer.takeRecords() : [];
    batch++;
    e.r = r;
    e.swaps.forEach(function (s) { write(s, e, r); });
    if (e === state.entries[0]) doc("documentElement").setAttribute("data-calltrack-number", r.number);
    if (observer) { observer.takeRecords(); if (pending.length) changed(pending); }
  }

  function assign(e) {
    var q = new URLSearchParams(location.search), params = {};
    KEYS.forEach(function (k) { if (q.get(k)) params[k] = q.get(k); });
    // GA4's client id, from the _ga cookie ("GA1.1.<id>.<time>"): the conversion sent back to GA4 names the visitor.
    var ga = doc("cookie").match(/(?:^|; )_ga=GA\d\.\d+\.(\d+\.\d+)/);
    if (ga) params.ga_client_id = ga[1];
    return post("assign", {
      pool: e.pool,
      visitor_id: state.visitorId,
      page_url: location.href,
      referrer: doc("referrer"),
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

  // Numbers the page changed or inserted after load: swapped at once when their destination has a number, or
  // its assignment starts. A batch of more than MAX_ROOTS added nodes costs one pass over the page, not one per node.
  function changed(records) {
    batch++;
    try {
      var roots = [];
      records.forEach(function (rec) {
        if (rec.type === "characterData") roots.push(rec.target);
        else for (var i = 0; i < rec.addedNodes.length && roots.length <= MAX_ROOTS; i++) roots.push(rec.addedNodes[i]);
      });
      if (roots.length > MAX_ROOTS) roots = [body];
      state.entries.forEach(function (e) {
        // Places the page re-rendered with its own number are swapped again; places it removed are forgotten.
        e.swaps = e.swaps.filter(function (s) {
          var node = s.n || s.a;
          if (node.isConnected !== false) return true;
          if (seen) seen["delete"](node);
        });
        if (e === state.entries[0]) state.swaps = e.swaps;
        if (e.r) e.swaps.forEach(function (s) { write(s, e, e.r); });
        roots.forEach(function (root) {
          var more = find(e.dest, root);
          if (!more.length) return;
          e.swaps.push.apply(e.swaps, more);
          if (e.r) more.forEach(function (s) { write(s, e, e.r); });
          else if (!e.started) begin(e);
        });
      });
    } catch (err) { /* never break the page */ }
    observer.takeRecords(); // the records of the writes above: ours, not the page's
  }

  function start() {
    try {
      body = doc("body");
      state.entries = destinations().map(function (e) { e.swaps = []; return e; });
      if (!state.entries.length) return;
      state.dest = state.entries[0].dest;
      state.visitorId = cookie();
      state.custom = custom();
      state.entries.forEach(function (e) {
        e.swaps = find(e.dest, body);
        // A data-swap destination the page does not show yet waits until it appears.
        if (e.swaps.length || !attr("data-swap")) begin(e);
      });
      state.swaps = state.entries[0].swaps;
      if (w.MutationObserver) {
        observer = new MutationObserver(changed);
        observer.observe(body, { childList: true, subtree: true, characterData: true });
      }
    } catch (err) { /* never break the page */ }
  }

  if (doc("readyState") === "loading") w.addEventListener("DOMContentLoaded", start);
  else start();
})(window, document);

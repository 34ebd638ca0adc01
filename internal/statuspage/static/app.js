// moat status page: refresh the page in place. One conditional request
// per interval; while nothing changed the server answers 304 and the
// page is left as it is. No other origin is ever contacted.
(function () {
  'use strict';
  var every = parseInt(document.body.getAttribute('data-refresh'), 10) * 1000;
  if (!(every > 0)) { return; }
  var shown = null;
  function tick() {
    if (document.hidden) { setTimeout(tick, every); return; }
    fetch(location.pathname, { cache: 'no-cache', credentials: 'same-origin', redirect: 'error' })
      .then(function (r) {
        if (!r.ok) { throw new Error('status ' + r.status); }
        var tag = r.headers.get('ETag');
        if (tag && tag === shown) { return null; }
        shown = tag;
        return r.text();
      })
      .then(function (html) {
        document.body.classList.remove('stale');
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var next = doc.getElementById('page');
        var cur = document.getElementById('page');
        if (next && cur) { cur.replaceWith(document.importNode(next, true)); }
      })
      .catch(function () { document.body.classList.add('stale'); })
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
}());

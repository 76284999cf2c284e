// Loaded after require.js and before the ipywidgets html-manager (embed-amd.js) on pages with
// saved widget state; see nb_ipywidgets_js in _config.yml. Written for this book, not vendored.
(function () {
  "use strict";
  // Each module bundled in embed-amd.js loads its Font Awesome files from the folder of its own
  // RequireJS module URL ("@jupyter-widgets/base", ".../controls", ".../html-manager/dist/..."),
  // which RequireJS resolves against the page's folder: book/@jupyter-widgets/..., a 404. Map every
  // one of those module names into the html-manager folder next to this script, where the fonts
  // are, so they come from _build/html/vendor/html-manager/ on pages at any depth.
  var htmlManager = new URL("html-manager", document.currentScript.src).href;
  var paths = { "@jupyter-widgets/html-manager/dist": htmlManager };
  ["base", "base7", "controls", "controls7", "html-manager"].forEach(function (name) {
    paths["@jupyter-widgets/" + name] = htmlManager + "/" + name;
  });
  window.require.config({ paths: paths });

  // ipywidgets 8 typesets widget descriptions with the MathJax 2 call MathJax.Hub.Queue(...),
  // which MathJax 3 does not have, so on a page with equations every described widget throws
  // (jupyter-widgets/ipywidgets#3829). Give MathJax 3 that one call, mapped to its typesetPromise.
  // MathJax is loaded "defer", so it is there by DOMContentLoaded; widgets render later, on load.
  document.addEventListener("DOMContentLoaded", function () {
    var mathjax = window.MathJax;
    if (mathjax === undefined || mathjax.Hub !== undefined || mathjax.startup === undefined) {
      return;
    }
    mathjax.Hub = {
      Queue: function (command) {
        var element = command[2];
        mathjax.startup.promise = mathjax.startup.promise.then(function () {
          return mathjax.typesetPromise([element]);
        });
      },
    };
  });
})();

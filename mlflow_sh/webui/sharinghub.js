// Injected into MLflow's index.html by webui/views.py (MLflow's own files stay untouched).
// Reads its settings from the JSON block #mlflow-sh-config. Runs before MLflow's deferred bundle.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("mlflow-sh-config").textContent);

  // Light mode, as SharingHub's pages (which frame this UI): the bundle reads this key before its first render,
  // and the theme switch of its settings page is hidden so that it cannot be turned back until the next load.
  try {
    window.localStorage.setItem("_mlflow_dark_mode_toggle_enabled", "false");
  } catch (e) {
    // storage refused (private mode, sandboxed frame): the UI then follows the system's preference
  }
  var style = document.createElement("style");
  // More specific than the design system's own !important rules; the second hides the switch's whole row.
  var themeSwitch = 'div[data-component-id="mlflow.settings.theme.toggle-switch"][data-component-type="switch"]';
  style.textContent =
    themeSwitch + ",div:has(> div > " + themeSwitch + "){display:none !important}" +
    "#mlflow-sh-bar{position:fixed;right:12px;bottom:12px;z-index:2147483000;display:flex;gap:6px;" +
    "font:12px/1.5 system-ui,sans-serif}" +
    "#mlflow-sh-bar>*{padding:2px 8px;border-radius:10px;border:1px solid #c4cbd4;background:#fff;" +
    "color:#11171c;text-decoration:none;box-shadow:0 1px 3px rgba(0,0,0,.12)}" +
    "#mlflow-sh-bar>a:hover{background:#eef3f8}" +
    "#mlflow-sh-bar>.mlflow-sh-read-only{border-color:#e0a3a3;background:#fff4f4;color:#a3131a}";
  document.head.appendChild(style);

  function item(text, href, className, newTab) {
    var element = document.createElement(href ? "a" : "span");
    element.textContent = text;
    if (className) element.className = className;
    if (href) element.href = href;
    if (newTab) {
      element.target = "_blank";
      element.rel = "noopener";
    }
    return element;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var bar = document.createElement("div");
    bar.id = "mlflow-sh-bar";
    if (config.readOnly) {
      bar.appendChild(item("read-only", null, "mlflow-sh-read-only"));
    }
    if (config.projectUrl) {
      bar.appendChild(item(config.project + " \u2197", config.projectUrl, "mlflow-sh-project", true));
    }
    if (config.globalViewUrl) {
      bar.appendChild(item("All projects", config.globalViewUrl, "mlflow-sh-global"));
    }
    if (config.logoutUrl) {
      bar.appendChild(item("Log out", config.logoutUrl, "mlflow-sh-logout"));
    }
    if (bar.childNodes.length) {
      document.body.appendChild(bar);
    }
  });
})();

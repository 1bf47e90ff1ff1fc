// Starts GOV.UK Frontend's components on every page. Its stylesheet shows the scripted version of
// a component only under these body classes, which the published template sets from an inline
// script; the site's Content-Security-Policy allows no inline script, so this file sets them.
import { initAll } from "../vendor/js/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();

// Starts the MOJ Frontend's components (filter toggle, button menu, sortable table, multi-select)
// on staff pages; govuk.js runs first and sets the body classes both design systems look for.
import { initAll } from "../vendor/js/moj-frontend.min.js";

initAll();

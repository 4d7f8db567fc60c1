// Package browser holds the console's browser tests: Debian's chromium,
// driven by chromedp, signs in as the security officer and as a patient
// of the demo hospital, acknowledges an alert, searches the audit log,
// withdraws a consent, reads a waiting-room display and tries a
// cross-site request forgery, saving screenshots of the main pages. They
// serve locations 7 and 9 and the console of Table 3's management
// requirement. Set MEDSEC_TEST_OUT to keep the screenshots, and
// MEDSEC_README_SCREENSHOTS=1 to refresh the README's (docs/*.png).
package browser

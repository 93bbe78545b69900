package cli

// SystemPlanDir lets the tests move the machine's plan directory out of
// the way.
var SystemPlanDir = &systemPlanDir

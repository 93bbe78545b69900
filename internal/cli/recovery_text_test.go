package cli

import "testing"

// TestRecoveryText: a restore to the end of the WAL (--target-latest) has
// no target settings, and says so instead of printing "()".
func TestRecoveryText(t *testing.T) {
	if got := recoveryText(nil); got != "to the end of the archived WAL" {
		t.Errorf("no settings: %q", got)
	}
	if got := recoveryText([]string{"recovery_target_lsn = '0/3000000'", "recovery_target_action = 'promote'"}); got != "recovery_target_lsn = '0/3000000', recovery_target_action = 'promote'" {
		t.Errorf("settings: %q", got)
	}
}

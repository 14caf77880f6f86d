package secretstore

// Outcome is what a write of a pull secret did.
type Outcome string

// The outcomes of Apply and Restore.
const (
	Unchanged   Outcome = "unchanged"
	Created     Outcome = "created"
	Updated     Outcome = "updated"
	WouldCreate Outcome = "would-create" // dry run
	WouldUpdate Outcome = "would-update" // dry run
)

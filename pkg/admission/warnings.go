package admission

import (
	"fmt"
	"unicode/utf8"
)

// The bounds of what the handler tells the user. The API server relays
// admission warnings to the client as HTTP Warning headers and stores them
// in no object, but a Pod with a thousand bad image references once drew
// megabytes of them; past 4 KiB the API server itself cuts each warning
// short. A few short ones say everything a person reads.
const (
	// maxWarnings is the most warnings one admission returns, the final
	// "and N more" included.
	maxWarnings = 10
	// maxWarningBytes bounds the warnings' total size.
	maxWarningBytes = 4 << 10
	// maxWarningLen bounds each warning.
	maxWarningLen = 512
)

// capWarnings returns the warnings without duplicates, each at most
// maxWarningLen bytes, at most maxWarnings of them within maxWarningBytes
// in all; when some are left out, the last one says how many.
func capWarnings(warnings []string) []string {
	seen := make(map[string]bool, len(warnings))
	unique := make([]string, 0, len(warnings))
	for _, w := range warnings {
		w = shorten(w, maxWarningLen)
		if !seen[w] {
			seen[w] = true
			unique = append(unique, w)
		}
	}
	if len(unique) <= maxWarnings && totalLen(unique) <= maxWarningBytes {
		return unique
	}
	// Room for the final line, whatever the number it says.
	budget := maxWarningBytes - len(moreWarnings(len(unique)))
	out := make([]string, 0, maxWarnings)
	size := 0
	for _, w := range unique {
		if len(out) == maxWarnings-1 || size+len(w) > budget {
			break
		}
		out = append(out, w)
		size += len(w)
	}
	return append(out, moreWarnings(len(unique)-len(out)))
}

func moreWarnings(n int) string {
	if n == 1 {
		return "regcred: and 1 more warning"
	}
	return fmt.Sprintf("regcred: and %d more warnings", n)
}

// shorten cuts s to at most n bytes, on a character boundary, marking the
// cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func totalLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	return n
}

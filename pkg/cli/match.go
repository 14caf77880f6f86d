package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/regcred/regcred/pkg/config"
)

type matchResult struct {
	Image    string `json:"image"`
	Registry string `json:"registry,omitempty"`
	Secret   string `json:"secret,omitempty"`
	Injected bool   `json:"injected"`
	Reason   string `json:"reason"`
}

// match tells which registry each image matches and which secret a Pod
// running it would get, or why none.
func match(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("regcred match", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.bind(fs, "configmap")
	nsLabels := fs.String("namespace-labels", "", "Labels of the Pod's namespace (k=v,k2=v2), for registries with a namespaceSelector.")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{fmt.Errorf("name at least one IMAGE")}
	}
	nsSet, err := labels.ConvertSelectorToLabelsMap(*nsLabels)
	if err != nil {
		return usageError{fmt.Errorf("--namespace-labels: %w", err)}
	}
	set, err := c.registries(ctx, stdin, stderr, true)
	if err != nil {
		return err
	}
	var results []matchResult
	all := true
	for _, img := range fs.Args() {
		m := set.Match(img)
		res := matchResult{Image: img}
		r := m.Registry
		switch {
		case r == nil && m.Hint != "":
			res.Reason = m.Hint
		case r == nil:
			res.Reason = "no configured registry serves this image"
		case !r.Injects:
			res.Registry = r.Name
			res.Reason = fmt.Sprintf("registry %q does not inject in cluster %q (its cluster policy)", r.Name, c.cluster)
		case !r.Serves(nsSet):
			res.Registry = r.Name
			res.Reason = fmt.Sprintf("registry %q serves only namespaces matching %s", r.Name, r.Namespaces)
		default:
			res.Registry, res.Secret, res.Injected = r.Name, r.SecretName, true
			if r.Mode == config.ImagePullSecret {
				res.Reason = fmt.Sprintf("registry %q (%s) injects the admin's secret %q", r.Name, r.Location, r.SecretName)
			} else {
				res.Reason = fmt.Sprintf("registry %q (%s) injects regcred's secret %q", r.Name, r.Location, r.SecretName)
			}
		}
		all = all && res.Injected
		results = append(results, res)
	}
	if c.output == "json" {
		if err := printJSON(stdout, results); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tREGISTRY\tSECRET\tWHY")
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Image, dash(r.Registry), dash(r.Secret), r.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !all {
		return errProblems
	}
	return nil
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

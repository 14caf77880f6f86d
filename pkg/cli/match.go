package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/regcred/regcred/pkg/plan"
)

type matchResult struct {
	Image    string `json:"image"`
	Registry string `json:"registry,omitempty"`
	Secret   string `json:"secret,omitempty"`
	Injected bool   `json:"injected"`
	Reason   string `json:"reason"`
	// KubeletFirst is the secret whose credential the kubelet will try
	// first for the image, with the Pod's secrets as regcred leaves them.
	KubeletFirst string `json:"kubeletFirst,omitempty"`
	// Warning says when that is not the intended registry's.
	Warning string `json:"warning,omitempty"`
}

// match tells which registry each image matches and which secret a Pod
// running it would get, or why none: the webhook's own plan, for a Pod
// with these images in a namespace with these labels.
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
	set, err := c.registries(ctx, stdin, stderr)
	if err != nil {
		return err
	}
	ns := plan.Namespace{Name: "default", Labels: nsSet}
	p := plan.ForPod(set, plan.Pod{Images: fs.Args()}, ns, plan.Exclusions{metav1.NamespaceSystem: true})
	var final []string
	for _, a := range p.Add {
		final = append(final, a.Secret)
	}
	firsts := plan.KubeletFirst(set, fs.Args(), final)
	var results []matchResult
	all := true
	for i, d := range p.Images {
		res := matchResult{Image: d.Image, Secret: d.Secret, Injected: d.Served, Reason: d.Detail, KubeletFirst: firsts[i].Secret}
		if w := plan.Shadowed(plan.Plan{Images: []plan.Image{d}}, firsts[i:i+1], final); len(w) > 0 {
			res.Warning = w[0]
		}
		if d.Registry != nil {
			res.Registry = d.Registry.Name
		}
		if d.Reason == plan.ClusterPolicy {
			res.Reason = fmt.Sprintf("registry %q does not inject in cluster %q (its cluster policy)", res.Registry, c.cluster)
		}
		if !d.Served {
			res.Secret = ""
		}
		all = all && res.Injected && res.Warning == ""
		results = append(results, res)
	}
	if c.output == "json" {
		if err := printJSON(stdout, results); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tREGISTRY\tSECRET\tKUBELET TRIES FIRST\tWHY")
		for _, r := range results {
			why := r.Reason
			if r.Warning != "" {
				why += "; " + strings.TrimPrefix(r.Warning, "regcred: ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Image, dash(r.Registry), dash(r.Secret), dash(r.KubeletFirst), why)
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

package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
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

// newMatch tells which registry each image matches and which secret a Pod
// running it would get, or why none: the webhook's own plan, for a Pod
// with these images in a namespace with these labels.
func newMatch() *cobra.Command {
	var c common
	var nsLabels string
	cmd := &cobra.Command{
		Use:   "match -f FILE [--cluster NAME] IMAGE...",
		Short: "Tell which registry and pull secret each image gets, or why none",
		Long: `Tell which registry each image matches and which pull secret a Pod running
it would get, or why none: the webhook's own decision, for a Pod with these
images in a namespace with --namespace-labels. Exit code 1 when an image gets
no secret.

For a Pod or a workload in a cluster, regcred explain reads everything from
the cluster.`,
		Example: `  # Which secret does each image get in cluster prod-eu?
  regcred match -f config.yaml --cluster prod-eu nginx quay.io/org/app

  # In a namespace labelled team=a (for registries with a namespaceSelector)
  regcred match -f config.yaml --namespace-labels team=a harbor.internal:8443/team-a/app -o json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("name at least one IMAGE")}
			}
			return nil
		},
	}
	c.bind(cmd.Flags(), "configmap")
	c.bindCluster(cmd.Flags())
	cmd.Flags().StringVar(&nsLabels, "namespace-labels", "", "Labels of the Pod's namespace (k=v,k2=v2), for registries with a namespaceSelector.")
	cmd.RunE = runE(func(cmd *cobra.Command, images []string) error {
		if err := c.check(); err != nil {
			return err
		}
		nsSet, err := labels.ConvertSelectorToLabelsMap(nsLabels)
		if err != nil {
			return usageError{fmt.Errorf("--namespace-labels: %w", err)}
		}
		set, err := c.registries(cmd.Context(), cmd.InOrStdin(), cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		ns := plan.Namespace{Name: "default", Labels: nsSet}
		p := plan.ForPod(set, plan.Pod{Images: images}, ns, plan.Exclusions{metav1.NamespaceSystem: true})
		var final []string
		for _, a := range p.Add {
			final = append(final, a.Secret)
		}
		firsts := plan.KubeletFirst(set, images, final)
		var results []matchResult
		all := true
		if p.Skipped != "" {
			// The whole Pod is left alone (a namespace that opted out):
			// each image gets nothing, for that reason.
			for _, img := range images {
				res := matchResult{Image: img, Reason: p.SkipDetail}
				if m := set.Match(img); m.Registry != nil {
					res.Registry = m.Registry.Name
				}
				results = append(results, res)
			}
			all = false
		}
		for i, d := range p.Images {
			res := matchResult{Image: d.Image, Secret: d.Secret, Injected: d.Served, Reason: d.Detail, KubeletFirst: firsts[i].Secret}
			if w := plan.Shadowed(plan.Plan{Images: []plan.Image{d}}, firsts[i:i+1], final); len(w) > 0 {
				res.Warning = w[0]
			}
			if d.Registry != nil {
				res.Registry = d.Registry.Name
			}
			if d.Reason == plan.ClusterPolicy && c.cluster != "" {
				res.Reason = fmt.Sprintf("registry %q does not inject in cluster %q (its cluster policy)", res.Registry, c.cluster)
			}
			if !d.Served {
				res.Secret = ""
			}
			all = all && res.Injected && res.Warning == ""
			results = append(results, res)
		}
		stdout := cmd.OutOrStdout()
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
	})
	return cmd
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

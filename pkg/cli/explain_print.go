package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// printExplanation prints an explanation for a person.
func printExplanation(w io.Writer, res explainResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	what := "from the manifest"
	switch {
	case res.Live && res.Kind == "Pod":
		what = "in the cluster"
	case res.Live:
		what = "in the cluster; its Pod template"
	case res.Kind != "Pod":
		what = "from the manifest; its Pod template"
	}
	fmt.Fprintf(w, "%s %s/%s (%s)\n", res.Kind, res.Namespace, res.Name, what)
	fmt.Fprintf(tw, "Namespace:\t%s (%s)\n", res.Namespace, describeLabels(res.NamespaceLabels))
	fmt.Fprintf(tw, "Cluster:\t%s\n", orNone(res.Cluster, "(no name: registries with an inject-only cluster policy do not inject)"))
	fmt.Fprintf(tw, "Config:\t%s\n", res.Config)
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.Skipped != "" {
		fmt.Fprintf(w, "\nregcred leaves this Pod alone: %s.\n", res.SkipDetail)
	}

	fmt.Fprintln(w)
	if len(res.Images) == 0 {
		fmt.Fprintln(w, "The Pod has no image.")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONTAINER\tIMAGE\tREGISTRY\tSECRET\tINJECTED\tKUBELET FIRST\tWHY")
		for _, img := range res.Images {
			first := "-"
			if img.KubeletFirst != nil {
				first = *img.KubeletFirst
			}
			who := dash(img.Container)
			if img.Volume != "" {
				who = "volume/" + img.Volume
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", who, img.Image, dash(img.Registry), dash(img.Secret), yesNo(img.Injected), first, img.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if len(res.PullSecrets) == 0 {
		fmt.Fprintln(w, "Image pull secrets: none")
	} else {
		fmt.Fprintln(w, "Image pull secrets:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range res.PullSecrets {
			why := "not regcred's"
			switch {
			case s.Planned:
				why = fmt.Sprintf("regcred will inject it, for registry %q, when the Pod is created", s.Registry)
			case s.InjectedBy != "":
				why = fmt.Sprintf("injected by regcred, for registry %q", s.Registry)
			}
			fmt.Fprintf(tw, "  %s\t%s\n", s.Name, why)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(res.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range res.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	return nil
}

// describeLabels lists labels k=v, sorted.
func describeLabels(l map[string]string) string {
	if l == nil {
		return "labels unknown"
	}
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

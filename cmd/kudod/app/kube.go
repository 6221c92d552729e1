package app

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/daemon"
)

// kubeFlags are kubectl's connection flags.
type kubeFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func (f *kubeFlags) add(fs *pflag.FlagSet, withNamespace bool) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	fs.StringVar(&f.context, "context", "", "the kubeconfig context to use")
	if withNamespace {
		fs.StringVarP(&f.namespace, "namespace", "n", "", "the namespace (default: the context's)")
	}
}

func (f *kubeFlags) loader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f.kubeconfig != "" {
		rules.ExplicitPath = f.kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
}

// restConfig returns the cluster's REST config.
func (f *kubeFlags) restConfig() (*rest.Config, error) {
	cfg, err := f.loader().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}

// client returns a client and the namespace to work in.
func (f *kubeFlags) client() (client.Client, string, error) {
	cfg, err := f.restConfig()
	if err != nil {
		return nil, "", err
	}
	scheme, err := daemon.Scheme()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("connect to %s: %w", cfg.Host, err)
	}
	ns := f.namespace
	if ns == "" {
		ns, _, err = f.loader().Namespace()
		if err != nil || ns == "" {
			ns = "default"
		}
	}
	return c, ns, nil
}

// completeInstances completes instance names (the first argument) from the cluster, as
// kubectl completes resource names.
func completeInstances(kf *kubeFlags) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, ns, err := kf.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var list v1alpha1.InstanceList
		if err := c.List(cmd.Context(), &list, client.InNamespace(ns)); err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []string
		for _, in := range list.Items {
			if strings.HasPrefix(in.Name, toComplete) {
				names = append(names, in.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

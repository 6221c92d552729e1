package app

import (
	"context"
	"encoding/json"
	"fmt"
	authenticationv1 "k8s.io/api/authentication/v1"
	"os/user"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// currentUser names who asked, for messages such as "aborted by alice".
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// getInstance reads an Instance; a missing one is an error naming it.
// instance connects with the command's kubeconfig and reads the named Instance in its
// namespace: what the commands that act on one instance start with.
func (f *kubeFlags) instance(ctx context.Context, name string) (client.Client, string, *v1alpha1.Instance, error) {
	c, ns, err := f.client()
	if err != nil {
		return nil, "", nil, err
	}
	inst, err := getInstance(ctx, c, ns, name)
	return c, ns, inst, err
}

func getInstance(ctx context.Context, c client.Client, ns, name string) (*v1alpha1.Instance, error) {
	inst := &v1alpha1.Instance{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, inst); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("instance %q not found in namespace %q", name, ns)
		}
		return nil, err
	}
	return inst, nil
}

// requester is who asks, as requests record it: the kubeconfig's user as the API server knows
// it (SelfSubjectReview), else the local user.
func requester(ctx context.Context, c client.Client) string {
	r := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, r); err == nil && r.Status.UserInfo.Username != "" {
		return r.Status.UserInfo.Username
	}
	return currentUser()
}

// annotate merge-patches one annotation of an Instance: the daemon's field manager owns the
// spec, so requests travel as annotations.
func annotate(cmd *cobra.Command, c client.Client, ns, name, key string, value any) error {
	inst, err := getInstance(cmd.Context(), c, ns, name)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: string(raw)}}})
	if err != nil {
		return err
	}
	return c.Patch(cmd.Context(), inst, client.RawPatch(types.MergePatchType, patch))
}

func newTriggerCommand(s streams) *cobra.Command {
	var (
		kf            kubeFlags
		replace       bool
		params        []string
		ignoreWindows bool
	)
	cmd := &cobra.Command{
		Use:   "trigger INSTANCE PLAN",
		Short: "Run a plan of an instance once (any plan but cleanup)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[1] == "cleanup" && !ignoreWindows {
				return exitCode(2, fmt.Errorf("the cleanup plan runs only when an instance is removed from git (--ignore-windows lets a removal held by a window go ahead)"))
			}
			values, err := planParameterFlags(params)
			if err != nil {
				return exitCode(2, err)
			}
			c, ns, err := kf.client()
			if err != nil {
				return exitCode(2, err)
			}
			t := v1alpha1.ManualTrigger{Plan: args[1], UID: string(uuid.NewUUID()), Replace: replace, User: requester(cmd.Context(), c), Parameters: values, IgnoreWindows: ignoreWindows}
			if err := annotate(cmd, c, ns, args[0], v1alpha1.AnnotationTrigger, t); err != nil {
				return exitCode(2, err)
			}
			fmt.Fprintf(s.Out, "Triggered plan %s of %s/%s (trigger %s).\n", args[1], ns, args[0], t.UID)
			return nil
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.ValidArgsFunction = completeInstances(&kf)
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a running plan instead of being skipped")
	cmd.Flags().StringArrayVarP(&params, "parameter", "p", nil, "a parameter value for this run only, NAME=VALUE (repeatable; docs/recovery.md)")
	cmd.Flags().BoolVar(&ignoreWindows, "ignore-windows", false, "start now the plan of this name that git asked for and a maintenance window holds (docs/operations.md)")
	return cmd
}

func newAbortCommand(s streams) *cobra.Command {
	var kf kubeFlags
	cmd := &cobra.Command{
		Use:   "abort INSTANCE",
		Short: "End an instance's running plan with FATAL_ERROR (a deleted instance stuck in a failed cleanup is deleted)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := kf.client()
			if err != nil {
				return exitCode(2, err)
			}
			a := v1alpha1.AbortRequest{UID: string(uuid.NewUUID()), User: requester(cmd.Context(), c)}
			if err := annotate(cmd, c, ns, args[0], v1alpha1.AnnotationAbort, a); err != nil {
				return exitCode(2, err)
			}
			fmt.Fprintf(s.Out, "Asked the daemon to abort the plan of %s/%s.\n", ns, args[0])
			return nil
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.ValidArgsFunction = completeInstances(&kf)
	return cmd
}

func newReconcileCommand(s streams) *cobra.Command {
	var (
		kf              kubeFlags
		daemonNamespace string
	)
	cmd := &cobra.Command{
		Use:   "reconcile REPOSITORY",
		Short: "Make the daemon poll a repository now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := kf.client()
			if err != nil {
				return exitCode(2, err)
			}
			cm := &corev1.ConfigMap{}
			key := types.NamespacedName{Namespace: daemonNamespace, Name: v1alpha1.SourceStatusName(args[0])}
			if err := c.Get(cmd.Context(), key, cm); err != nil {
				if apierrors.IsNotFound(err) {
					return exitCode(2, fmt.Errorf("no repository %q: the daemon has not recorded it in namespace %s", args[0], daemonNamespace))
				}
				return exitCode(2, err)
			}
			now := time.Now().UTC().Format(time.RFC3339Nano)
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationReconcileRequest: now}}})
			if err := c.Patch(cmd.Context(), cm, client.RawPatch(types.MergePatchType, patch)); err != nil {
				return exitCode(2, err)
			}
			fmt.Fprintf(s.Out, "Asked the daemon to poll %s now.\n", args[0])
			return nil
		},
	}
	kf.add(cmd.Flags(), false)
	cmd.Flags().StringVar(&daemonNamespace, "daemon-namespace", defaultDaemonNamespace, "the daemon's namespace (its --leader-election-namespace)")
	return cmd
}

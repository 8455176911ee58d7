import { Validations } from 'aws-cdk-lib';
import {
  type AddToPrincipalPolicyResult,
  Effect,
  ManagedPolicy,
  Policy,
  PolicyStatement,
  Role,
  type RoleProps,
} from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** Actions AWS authorizes only on `Resource: "*"`, and why a role needs them. */
export interface StarOnlyGrant {
  readonly actions: readonly string[];
  readonly reason: string;
}

const IAM5_STAR = 'AwsSolutions-IAM5[Resource::*]';

/** An unconditional allow of `actions` on exactly `*`. */
function isStarStatement(statement: PolicyStatement): boolean {
  return (
    statement.effect === Effect.ALLOW &&
    statement.notActions.length === 0 &&
    statement.notResources.length === 0 &&
    !statement.hasPrincipal &&
    statement.resources.length === 1 &&
    statement.resources[0] === '*' &&
    statement.actions.length > 0
  );
}

function describe(grants: readonly StarOnlyGrant[]): string {
  return grants.map((grant) => `${grant.actions.join(', ')}: ${grant.reason}`).join(' | ');
}

/**
 * One customer-managed policy of `*`-only actions that many roles need alike (Lambda's VPC network
 * interfaces and X-Ray, say): one resource for the stack instead of one per role, acknowledged once for
 * cdk-nag with the reason of each action.
 */
export class StarOnlyManagedPolicy extends Construct {
  public readonly policy: ManagedPolicy;
  private readonly actions: ReadonlySet<string>;

  public constructor(
    scope: Construct,
    id: string,
    props: { readonly grants: readonly StarOnlyGrant[]; readonly description: string },
  ) {
    super(scope, id);
    this.actions = new Set(props.grants.flatMap((grant) => grant.actions));
    this.policy = new ManagedPolicy(this, 'Policy', {
      description: props.description,
      statements: props.grants.map(
        (grant) =>
          new PolicyStatement({ effect: Effect.ALLOW, actions: [...grant.actions], resources: ['*'] }),
      ),
    });
    Validations.of(this.policy).acknowledge({
      id: IAM5_STAR,
      reason: `Only actions without resource-level permissions are granted on "*" here: ${describe(props.grants)}`,
    });
  }

  /** This policy grants every action of a `*` statement already. */
  public covers(statement: PolicyStatement): boolean {
    return isStarStatement(statement) && statement.actions.every((action) => this.actions.has(action));
  }
}

/** Properties of a {@link WildcardConfinedRole}. */
export interface WildcardConfinedRoleProps extends RoleProps {
  /** `*`-only actions many roles share; attached to this role. @default - none */
  readonly shared?: StarOnlyManagedPolicy;
  /** `*`-only actions of this role alone (each group with its reason). @default - none */
  readonly starOnly?: readonly StarOnlyGrant[];
}

/**
 * A role whose `Resource: "*"` grants are confined to known actions.
 *
 * cdk-nag reports every `*` resource of a policy as one finding, `AwsSolutions-IAM5[Resource::*]`, whatever
 * the action: acknowledging it on the role would silently accept any later `*` grant (s3:DeleteObject on
 * every bucket, say). Here an allow on `*` of actions the shared policy grants is answered by that policy;
 * one of actions listed in `starOnly` goes to this role's own policy `StarOnlyActions`; both carry the
 * acknowledgement, with the reason of each action. Any other `*` grant lands in the default policy,
 * unacknowledged, and fails the synth. Grants CDK adds itself (X-Ray with tracing, a state machine's log
 * delivery) go through {@link addToPrincipalPolicy} too, so they are confined the same way.
 */
export class WildcardConfinedRole extends Role {
  private readonly shared?: StarOnlyManagedPolicy;
  private readonly starOnly: readonly StarOnlyGrant[];
  private readonly starOnlyActions: ReadonlySet<string>;
  private ownStarPolicy?: Policy;

  public constructor(scope: Construct, id: string, props: WildcardConfinedRoleProps) {
    const { shared, starOnly = [], ...roleProps } = props;
    super(scope, id, roleProps);
    this.shared = shared;
    this.starOnly = starOnly;
    this.starOnlyActions = new Set(starOnly.flatMap((grant) => grant.actions));
    if (shared) this.addManagedPolicy(shared.policy);
  }

  public override addToPrincipalPolicy(statement: PolicyStatement): AddToPrincipalPolicyResult {
    if (this.shared?.covers(statement)) return { statementAdded: true, policyDependable: this.shared.policy };
    if (!isStarStatement(statement) || !statement.actions.every((action) => this.starOnlyActions.has(action)))
      return super.addToPrincipalPolicy(statement);
    if (!this.ownStarPolicy) {
      this.ownStarPolicy = new Policy(this, 'StarOnlyActions', { roles: [this] });
      Validations.of(this.ownStarPolicy).acknowledge({
        id: IAM5_STAR,
        reason:
          'Only actions without resource-level permissions are granted on "*" here (any other "*" grant on ' +
          `this role goes to its default policy and fails cdk-nag): ${describe(this.starOnly)}`,
      });
    }
    this.ownStarPolicy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.ownStarPolicy };
  }
}

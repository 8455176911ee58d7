/**
 * Turns the synthesized `AWS::StepFunctions::StateMachine` definitions of a CloudFormation template into
 * plain ASL objects that a local interpreter (aws-local-stepfunctions) or asl-validator accepts.
 *
 * CloudFormation intrinsics are replaced with fake but well-formed values: pseudo parameters become a fixed
 * partition/region/account, and a reference to a resource becomes an ARN whose name is the logical id
 * (`{ "Fn::GetAtt": ["ChunkFunction3AD12B1A", "Arn"] }` →
 * `arn:aws:lambda:us-east-1:123456789012:function:ChunkFunction3AD12B1A`), so a runner can map a task's
 * `FunctionName` back to the construct it came from.
 */

/** The fake environment intrinsics resolve to. */
export interface ResolveOptions {
  /** @default 'aws' */
  readonly partition?: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '123456789012' */
  readonly accountId?: string;
  /** @default 'amazonaws.com' */
  readonly urlSuffix?: string;
  /** Value of `AWS::StackName`. @default 'PgLifecycle' */
  readonly stackName?: string;
}

/** An Amazon States Language definition (JSONPath). */
export type AslDefinition = {
  StartAt: string;
  States: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
};

/** One state machine of a template, as plain ASL. */
export interface ResolvedStateMachine {
  readonly logicalId: string;
  readonly definition: AslDefinition;
}

/** A template uses an intrinsic or reference this resolver does not handle. */
export class UnresolvableDefinitionError extends Error {
  public override readonly name = 'UnresolvableDefinitionError';
}

interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

interface Environment {
  readonly partition: string;
  readonly region: string;
  readonly accountId: string;
  readonly urlSuffix: string;
  readonly stackName: string;
  readonly resources: Readonly<Record<string, TemplateResource>>;
}

/** Extracts and resolves every state machine definition of a synthesized template. */
export function extractStateMachineDefinitions(
  template: object,
  options: ResolveOptions = {},
): ResolvedStateMachine[] {
  const resources = ((template as { Resources?: Record<string, TemplateResource> }).Resources ??
    {}) as Record<string, TemplateResource>;
  const env: Environment = {
    partition: options.partition ?? 'aws',
    region: options.region ?? 'us-east-1',
    accountId: options.accountId ?? '123456789012',
    urlSuffix: options.urlSuffix ?? 'amazonaws.com',
    stackName: options.stackName ?? 'PgLifecycle',
    resources,
  };
  return Object.entries(resources)
    .filter(([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine')
    .map(([logicalId, resource]) => ({ logicalId, definition: resolveDefinition(logicalId, resource, env) }));
}

function resolveDefinition(logicalId: string, resource: TemplateResource, env: Environment): AslDefinition {
  const properties = resource.Properties ?? {};
  let definition: unknown;
  if (properties.Definition !== undefined) {
    definition = resolveValue(properties.Definition, env);
  } else if (properties.DefinitionString !== undefined) {
    const text = resolveValue(properties.DefinitionString, env);
    if (typeof text !== 'string')
      throw new UnresolvableDefinitionError(`${logicalId}: DefinitionString is not a string`);
    definition = JSON.parse(text);
  } else {
    throw new UnresolvableDefinitionError(
      `${logicalId}: no DefinitionString or Definition (DefinitionS3Location?)`,
    );
  }
  const asl = definition as Partial<AslDefinition> | null;
  if (typeof asl?.StartAt !== 'string' || typeof asl.States !== 'object' || asl.States === null) {
    throw new UnresolvableDefinitionError(`${logicalId}: the definition has no StartAt/States`);
  }
  return asl as AslDefinition;
}

function resolveValue(value: unknown, env: Environment): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveValue(item, env));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  const [first] = entries;
  if (entries.length === 1 && first !== undefined && (first[0] === 'Ref' || first[0].startsWith('Fn::'))) {
    return resolveIntrinsic(first[0], first[1], env);
  }
  return Object.fromEntries(entries.map(([key, item]) => [key, resolveValue(item, env)]));
}

function resolveIntrinsic(name: string, argument: unknown, env: Environment): unknown {
  switch (name) {
    case 'Ref':
      return resolveRef(String(argument), env);
    case 'Fn::GetAtt': {
      const [logicalId, attribute] = Array.isArray(argument) ? argument : String(argument).split('.');
      return resolveGetAtt(String(logicalId), String(attribute), env);
    }
    case 'Fn::Join': {
      const [delimiter, items] = argument as [string, unknown[]];
      return (resolveValue(items, env) as unknown[]).map(String).join(delimiter);
    }
    case 'Fn::Select': {
      const [index, list] = argument as [unknown, unknown];
      return (resolveValue(list, env) as unknown[])[Number(resolveValue(index, env))];
    }
    case 'Fn::Split': {
      const [delimiter, source] = argument as [string, unknown];
      return String(resolveValue(source, env)).split(delimiter);
    }
    case 'Fn::Sub': {
      const [template, variables] = Array.isArray(argument) ? argument : [argument, {}];
      const resolvedVariables = resolveValue(variables, env) as Record<string, unknown>;
      return String(template).replace(/\$\{([^}!][^}]*)\}/g, (_match, reference: string) => {
        if (reference in resolvedVariables) return String(resolvedVariables[reference]);
        const [logicalId, ...attribute] = reference.split('.');
        return String(
          attribute.length > 0
            ? resolveGetAtt(String(logicalId), attribute.join('.'), env)
            : resolveRef(String(logicalId), env),
        );
      });
    }
    default:
      throw new UnresolvableDefinitionError(`unsupported intrinsic ${name}`);
  }
}

function resolveRef(target: string, env: Environment): string {
  switch (target) {
    case 'AWS::Partition':
      return env.partition;
    case 'AWS::Region':
      return env.region;
    case 'AWS::AccountId':
      return env.accountId;
    case 'AWS::URLSuffix':
      return env.urlSuffix;
    case 'AWS::StackName':
      return env.stackName;
    default: {
      const resource = env.resources[target];
      if (!resource) throw new UnresolvableDefinitionError(`Ref to unknown resource or parameter ${target}`);
      return fakeRef(target, resource.Type, env);
    }
  }
}

function resolveGetAtt(logicalId: string, attribute: string, env: Environment): string {
  const resource = env.resources[logicalId];
  if (!resource) throw new UnresolvableDefinitionError(`Fn::GetAtt of unknown resource ${logicalId}`);
  if (attribute === 'Arn') return fakeArn(logicalId, resource.Type, env);
  if (attribute === 'Name' || attribute.endsWith('Name')) return logicalId;
  return `${logicalId}.${attribute}`;
}

/** `Ref` returns the ARN for some resource types and a name/URL for others, as CloudFormation does. */
function fakeRef(logicalId: string, type: string, env: Environment): string {
  switch (type) {
    case 'AWS::StepFunctions::StateMachine':
    case 'AWS::SNS::Topic':
    case 'AWS::SecretsManager::Secret':
    case 'AWS::SecretsManager::SecretTargetAttachment':
      return fakeArn(logicalId, type, env);
    case 'AWS::SQS::Queue':
      return `https://sqs.${env.region}.${env.urlSuffix}/${env.accountId}/${logicalId}`;
    default:
      return logicalId;
  }
}

function fakeArn(logicalId: string, type: string, env: Environment): string {
  const prefix = `arn:${env.partition}`;
  const regional = (service: string, resource: string) =>
    `${prefix}:${service}:${env.region}:${env.accountId}:${resource}`;
  switch (type) {
    case 'AWS::Lambda::Function':
      return regional('lambda', `function:${logicalId}`);
    case 'AWS::StepFunctions::StateMachine':
      return regional('states', `stateMachine:${logicalId}`);
    case 'AWS::SNS::Topic':
      return regional('sns', logicalId);
    case 'AWS::SQS::Queue':
      return regional('sqs', logicalId);
    case 'AWS::S3::Bucket':
      return `${prefix}:s3:::${logicalId.toLowerCase()}`;
    case 'AWS::DynamoDB::Table':
      return regional('dynamodb', `table/${logicalId}`);
    case 'AWS::SecretsManager::Secret':
    case 'AWS::SecretsManager::SecretTargetAttachment':
      return regional('secretsmanager', `secret:${logicalId}-AbCdEf`);
    case 'AWS::IAM::Role':
      return `${prefix}:iam::${env.accountId}:role/${logicalId}`;
    default: {
      const service = type.split('::')[1]?.toLowerCase() ?? 'unknown';
      return regional(service, logicalId);
    }
  }
}

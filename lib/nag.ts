/**
 * cdk-nag 3 helpers: acknowledgements of IAM5 (wildcard) findings need the exact finding id, which cdk-nag
 * derives from the synthesized CloudFormation (`Resource::<Logical.Arn>/archive/*`). Deriving it the same
 * way from the token keeps each acknowledgement tied to one resource and robust to logical-id changes.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** cdk-nag's flattening of a CloudFormation reference (`Fn::Join`, `Fn::GetAtt`, `Ref`, `Fn::Sub`). */
function flattenCfnReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const record = node as Record<string, unknown>;
    if (Array.isArray(record['Fn::Join'])) {
      const [delimiter, items] = record['Fn::Join'] as [string, unknown[]];
      return items.map(flattenCfnReference).join(delimiter);
    }
    if (record['Fn::Sub'] !== undefined) return flattenCfnReference(record['Fn::Sub']);
    if (Array.isArray(record['Fn::GetAtt'])) {
      const [resource, attribute] = record['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenCfnReference(resource)}.${flattenCfnReference(attribute)}>`;
    }
    if (record['Fn::ImportValue'] !== undefined) return flattenCfnReference(record['Fn::ImportValue']);
    if (record.Ref !== undefined) return `<${flattenCfnReference(record.Ref)}>`;
  }
  return JSON.stringify(node);
}

/** The cdk-nag IAM5 finding id for a wildcard resource (a string that may contain tokens). */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenCfnReference(Stack.of(scope).resolve(resource))}]`;
}

/** Acknowledges the IAM5 finding of one wildcard resource on `scope` (a role or policy) and its children. */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: wildcardResourceFinding(scope, resource), reason });
}

// Placeholder until the handler lands; the CDK construct needs the entry file to exist.
export const handler = async (event: unknown): Promise<unknown> => event;

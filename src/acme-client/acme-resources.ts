import { z } from "zod";

/**
 * The parts of RFC 8555 resources (§7.1.3 order, §7.1.4 authorization, §8 challenge) the issuer reads,
 * validated at the edge. Unknown fields are ignored; anything missing that we need is a protocol error.
 */

const problemSchema = z
  .object({
    type: z.string().optional(),
    detail: z.string().optional(),
    status: z.number().optional(),
    identifier: z.object({ type: z.string().optional(), value: z.string().optional() }).optional(),
    get subproblems() {
      return z.array(problemSchema).optional();
    },
  })
  .loose();

export const challengeSchema = z
  .object({
    type: z.string(),
    url: z.string(),
    status: z.string(),
    token: z.string().optional(),
    error: problemSchema.optional(),
  })
  .loose();

export const authorizationSchema = z
  .object({
    identifier: z.object({ type: z.string(), value: z.string() }),
    status: z.string(),
    challenges: z.array(challengeSchema),
    wildcard: z.boolean().optional(),
  })
  .loose();

export const orderSchema = z
  .object({
    status: z.string(),
    identifiers: z.array(z.object({ type: z.string(), value: z.string() }).loose()).optional(),
    expires: z.string().optional(),
    authorizations: z.array(z.string()),
    finalize: z.string(),
    certificate: z.string().optional(),
    error: problemSchema.optional(),
  })
  .loose();

export type AcmeChallenge = z.infer<typeof challengeSchema>;
export type AcmeAuthorization = z.infer<typeof authorizationSchema>;
export type AcmeOrder = z.infer<typeof orderSchema>;

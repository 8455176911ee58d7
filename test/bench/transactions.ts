/**
 * Times the chunk transactions of a run from outside: each connection the steps open is wrapped so that every
 * transaction (BEGIN … COMMIT/ROLLBACK) is timed to the end of its COMMIT — what a concurrent writer waiting on
 * one of its row locks would wait at most. Nothing in functions/ changes. Optionally sums the time of every query
 * by kind (`QueryTimes`), for where a run's wall time goes.
 */
import type { StepDependencies } from '../../functions/run/dependencies.ts';

/** Seconds spent in queries, by kind; `outside_transactions_s` is every query not between BEGIN and COMMIT. */
export interface QueryTimes {
  /** Statements whose text holds `marker` (the action's chunk statement), inside transactions. */
  chunk_statement_s: number;
  chunk_statements: number;
  /** BEGIN, COMMIT / ROLLBACK. */
  begin_commit_s: number;
  /** Other statements inside transactions (ledger rows, locks, settings). */
  other_in_transactions_s: number;
  /** Statements outside any transaction: Start's catalog reads, probes, EXPLAIN, counts; Finish. */
  outside_transactions_s: number;
  connections: number;
  /** Wall time of the connects (pool or new connection). */
  connect_s: number;
}

export function emptyQueryTimes(): QueryTimes {
  return {
    chunk_statement_s: 0,
    chunk_statements: 0,
    begin_commit_s: 0,
    other_in_transactions_s: 0,
    outside_transactions_s: 0,
    connections: 0,
    connect_s: 0,
  };
}

/**
 * `transactions` receives each transaction's milliseconds (BEGIN to the end of COMMIT/ROLLBACK). With `times`,
 * every query is also timed and added to its kind; `marker` picks the chunk statement out by its text.
 */
export function timeTransactions(
  deps: StepDependencies,
  transactions: number[],
  times?: QueryTimes,
  marker?: string,
): StepDependencies {
  return {
    ...deps,
    // The step's session timeouts (its policy's chunking) go through: only the timing is added.
    connect: async (timeouts) => {
      const connectStarted = performance.now();
      const client = await deps.connect(timeouts);
      if (times) {
        times.connections += 1;
        times.connect_s += (performance.now() - connectStarted) / 1000;
      }
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      let begunAt: number | undefined;
      (client as { query: unknown }).query = async (...args: unknown[]) => {
        const first = args[0];
        const text = typeof first === 'string' ? first : ((first as { text?: string })?.text ?? '');
        const started = performance.now();
        if (text === 'BEGIN') begunAt = started;
        const inTransaction = begunAt !== undefined;
        const out = await query(...args);
        const ended = performance.now();
        if (times) {
          const seconds = (ended - started) / 1000;
          if (text === 'BEGIN' || text === 'COMMIT' || text === 'ROLLBACK') times.begin_commit_s += seconds;
          else if (!inTransaction) times.outside_transactions_s += seconds;
          else if (marker !== undefined && text.includes(marker)) {
            times.chunk_statement_s += seconds;
            times.chunk_statements += 1;
          } else times.other_in_transactions_s += seconds;
        }
        if ((text === 'COMMIT' || text === 'ROLLBACK') && begunAt !== undefined) {
          transactions.push(ended - begunAt);
          begunAt = undefined;
        }
        return out;
      };
      return client;
    },
  };
}

/**
 * Distributed load: N load agents (the engine's single-file bundle) as a Kubernetes Indexed Job, each
 * its share of the load, starting together, their ledgers merged and judged as one run.
 *
 *   const result = await runAgents({ cluster: target, agents: 2, url, executor, scenario, thresholds });
 *   result.assessment.verdict; result.agents   // per agent: reported or why not
 */
export {
  runAgents,
  startAgents,
  type AgentCluster,
  type AgentImageSource,
  type AgentsRun,
  type RunAgentsOptions,
} from './run-agents.ts';
export { mergeAgentResults, mergeLedgers, type AgentOutcome, type DistributedLoadResult, type MergeInput } from './merge.ts';
export { startCollector, type AgentReport, type Collector, type CollectorOptions } from './collector.ts';
export { agentShare, shareExecutor, type AgentShare } from './share.ts';
export { sendReport, type AgentReportHeader } from './report.ts';

/**
 * An ablation worker: {@link resgraph.worker.TaskRunner} runs one AblationTask on the model server
 * (METHOD.md steps 3-5), {@link resgraph.worker.kafka.TaskListener} takes the tasks from Kafka and
 * publishes what became of them, {@link resgraph.worker.grpc.AblateClient} calls the model server.
 *
 * <p>Its beans are enabled by {@code resgraph.worker.enabled}, which {@link
 * resgraph.worker.AblationWorker} sets.
 */
@Configuration
@Requires(property = "resgraph.worker.enabled", value = "true")
package resgraph.worker;

import io.micronaut.context.annotation.Configuration;
import io.micronaut.context.annotation.Requires;

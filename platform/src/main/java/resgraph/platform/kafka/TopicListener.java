package resgraph.platform.kafka;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.Backoff;

/**
 * resgraph's one Kafka listener runtime: a member of a consumer group, on a thread of its own,
 * that hands each record of one topic to its service's code and commits the record's offset only
 * once that code has made its work durable (written it to Neo4j and published its event, say).
 * So a listener that dies, even by SIGKILL, loses nothing: what it had not committed goes to
 * another member of its group once the group notices, and is processed again. That is at least
 * once; every handler is idempotent.
 *
 * <p>Two ways to work, one per kind of work:
 * <ul>
 *   <li>{@link Builder#batches}: a poll's records handled as one batch (the orchestrator's events,
 *       the graph service's effects: one Neo4j transaction a poll);
 *   <li>{@link Builder#longTasks}: one record at a time, run on a thread of its own while this one
 *       keeps polling with every partition paused, so the member stays in its group however long
 *       the task takes, its retries included, and answers a rebalance or a stop within a fraction
 *       of a second (the ablation workers). Running the task on the polling thread within a
 *       bounded time instead would hold up every rebalance of the group, and so every member
 *       joining it, for as long as that bound.
 * </ul>
 *
 * <p>What becomes of a record that cannot be processed is the listener's declared
 * {@link ErrorStrategy}. A listener stops when its service stops ({@link #close}): it stops
 * polling, abandons uncommitted what is in hand, and leaves the group at once. Anything else that
 * ends it (an Error, an exception outside any record's processing) is a failure:
 * {@link #ended} says which, and {@link Listeners} tells the application.
 *
 * @param <V> the protobuf message the topic carries
 */
public final class TopicListener<V extends MessageLite> implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(TopicListener.class);

  /** A record and its value; {@code problem} says why there is no value when it could not be read. */
  record Received<V>(ConsumerRecord<String, byte[]> raw, V value, String problem) {
    String key() {
      return raw.key();
    }

    TopicPartition partition() {
      return new TopicPartition(raw.topic(), raw.partition());
    }
  }

  /** How the records are worked through: {@link PollWork} or {@link LongTaskWork}. */
  interface Work {
    /** Polls and works until the listener stops. */
    void loop() throws InterruptedException;

    /** Called once the loop is over (or never ran), before the consumer closes. */
    void closed();

    /** What it does when the group moves partitions, if anything. */
    Optional<ConsumerRebalanceListener> rebalance();
  }

  final String name;
  final String topic;
  final String group;
  final KafkaConsumer<String, byte[]> consumer;
  final ErrorStrategy<V> errors;
  final Duration idlePoll;
  private final Parser<V> parser;
  private final String typeName;
  private final Work work;
  private final Thread thread;
  private final CountDownLatch stopping = new CountDownLatch(1);
  private final CompletableFuture<Optional<Throwable>> ended = new CompletableFuture<>();

  private TopicListener(Builder<V> b, KafkaBroker broker, Function<TopicListener<V>, Work> work,
      Map<String, Object> modeSettings) {
    this.name = b.name;
    this.topic = b.topic;
    this.group = b.group;
    this.errors = b.errors;
    this.idlePoll = b.idlePoll;
    this.parser = b.parser;
    this.typeName = b.typeName;
    Map<String, Object> settings = new HashMap<>(b.settings);
    settings.putAll(modeSettings);
    this.consumer = broker.consumer(b.group, b.name, settings);
    this.work = work.apply(this);
    this.thread = new Thread(this::run, b.thread);
  }

  /** Declares a listener of {@code topic}, whose values are {@code prototype}'s type. */
  @SuppressWarnings("unchecked")
  public static <V extends MessageLite> Builder<V> on(String topic, V prototype) {
    return new Builder<>(topic, (Parser<V>) prototype.getParserForType(), prototype.getClass().getSimpleName());
  }

  /** Joins the group and starts working, on the listener's own thread. */
  public void start() {
    thread.start();
  }

  /** Completes when the listener has stopped: empty when it was told to, else the failure that ended it. */
  public CompletableFuture<Optional<Throwable>> ended() {
    return ended;
  }

  /** Waits until the listener has stopped; see {@link #ended}. */
  public Optional<Throwable> awaitEnd() {
    return ended.join();
  }

  public String name() {
    return name;
  }

  /** Stops polling, abandons what is in hand uncommitted, and leaves the group. */
  @Override
  public void close() throws InterruptedException {
    stopping.countDown();
    if (thread.getState() == Thread.State.NEW) {
      work.closed();
      consumer.close();
      ended.complete(Optional.empty());
      return;
    }
    consumer.wakeup();
    thread.join();
  }

  boolean running() {
    return stopping.getCount() > 0;
  }

  /** Waits out a backoff; false if the listener is stopping meanwhile. */
  boolean pause(Duration wait) throws InterruptedException {
    return !stopping.await(wait.toMillis(), TimeUnit.MILLISECONDS);
  }

  private void run() {
    Throwable failure = null;
    try {
      Optional<ConsumerRebalanceListener> rebalance = work.rebalance();
      if (rebalance.isPresent()) consumer.subscribe(List.of(topic), rebalance.get());
      else consumer.subscribe(List.of(topic));
      LOG.info("{}: taking records from {} in group {}", name, topic, group);
      work.loop();
    } catch (WakeupException | InterruptedException stopping) {
      // close() asked
    } catch (RuntimeException | Error e) {
      failure = e;
      LOG.error("{}: the listener on {} failed; what it had not committed goes to another member of {}", name, topic, group, e);
    } finally {
      work.closed();
      consumer.close();
      ended.complete(Optional.ofNullable(failure));
    }
  }

  /** The record's value, or why it has none. */
  Received<V> read(ConsumerRecord<String, byte[]> r) {
    if (r.value() == null) return new Received<>(r, null, "the record has no value");
    try {
      return new Received<>(r, parser.parseFrom(r.value()), null);
    } catch (InvalidProtocolBufferException e) {
      return new Received<>(r, null, ProtoSerde.notA(typeName, e));
    }
  }

  /**
   * Commits, and finishes committing when a stop wakes the consumer meanwhile: the work is durable,
   * so the loop ends only after. A commit the group refuses (the partition moved on, or the broker
   * is away) is logged: whoever has the partition now processes its records again, idempotently.
   */
  void commit(Map<TopicPartition, OffsetAndMetadata> offsets) {
    if (offsets.isEmpty()) return;
    try {
      try {
        consumer.commitSync(offsets);
      } catch (WakeupException stopping) {
        consumer.commitSync(offsets);
      }
    } catch (KafkaException e) {
      LOG.warn("{}: offsets {} not committed ({}); their records will be processed again", name, offsets, e.toString());
    }
  }

  /** Declares a listener: where it reads, how it names itself, and what becomes of what fails. */
  public static final class Builder<V extends MessageLite> {
    private final String topic;
    private final Parser<V> parser;
    private final String typeName;
    private String group;
    private String name;
    private String thread;
    private Map<String, Object> settings = Map.of();
    private Duration idlePoll = Duration.ofSeconds(1);
    private ErrorStrategy<V> errors;

    private Builder(String topic, Parser<V> parser, String typeName) {
      this.topic = topic;
      this.parser = parser;
      this.typeName = typeName;
    }

    /** The consumer group: its members share the topic's partitions. */
    public Builder<V> group(String group) {
      this.group = group;
      return this;
    }

    /** The Kafka client id, in logs; and the listener's thread's name. */
    public Builder<V> name(String clientId, String threadName) {
      this.name = clientId;
      this.thread = threadName;
      return this;
    }

    /** Consumer settings beyond {@link KafkaClients#consumer}'s. */
    public Builder<V> settings(Map<String, Object> settings) {
      this.settings = Map.copyOf(settings);
      return this;
    }

    /** How long a poll waits for records when nothing is in hand (1 s). */
    public Builder<V> idlePoll(Duration idlePoll) {
      this.idlePoll = idlePoll;
      return this;
    }

    public Builder<V> errors(ErrorStrategy<V> errors) {
      this.errors = errors;
      return this;
    }

    /** A poll's records handled as one batch, on the listener's thread. */
    public TopicListener<V> batches(KafkaBroker broker, BatchHandler<V> handler) {
      checkForever();
      return new TopicListener<>(this, broker, l -> new PollWork<>(l, handler), Map.of());
    }

    /** One record at a time, run on the thread {@code taskThread} while this one keeps polling. */
    public <R> TopicListener<V> longTasks(KafkaBroker broker, LongTask<V, R> task, String taskThread) {
      return new TopicListener<>(this, broker, l -> new LongTaskWork<>(l, task, taskThread), LongTaskWork.SETTINGS);
    }

    /** A poll's listener retries its whole batch, so it may not give up on one record of it. */
    private void checkForever() {
      if (!errors.retry().retryFor().equals(Backoff.FOREVER)) {
        throw new IllegalArgumentException(name + ": a listener that works by the poll retries without end");
      }
    }
  }

  /**
   * Handles a poll's readable values, in order; returns once their work is durable, with the
   * values it refuses for good and why (given up as the strategy's {@code refused}). What it
   * throws is worth retrying: the whole poll is then tried again.
   */
  @FunctionalInterface
  public interface BatchHandler<V> {
    Map<V, String> handle(List<V> values) throws Exception;
  }

  /**
   * A task that may take long: {@link #run} on a thread of its own (once per attempt; interrupted
   * when the record moves to another member), then {@link #settle} on the listener's thread,
   * which makes its result durable before the offset is committed.
   */
  public interface LongTask<V, R> {
    /** One attempt; a transient {@link resgraph.platform.ResgraphException} is tried again after the strategy's backoff. */
    R run(String key, V value) throws Exception;

    /**
     * Publishes the result (or gives the record up, through the strategy's {@code refused}).
     *
     * @throws org.apache.kafka.common.errors.RetriableException when that could not be made durable
     *     in time: nothing is committed and the task runs again
     */
    void settle(ConsumerRecord<String, byte[]> record, V value, R result, int attempts, Duration took) throws Exception;
  }
}

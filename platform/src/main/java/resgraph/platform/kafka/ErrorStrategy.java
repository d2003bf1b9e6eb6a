package resgraph.platform.kafka;

import resgraph.platform.Backoff;

/**
 * What a listener does with a record it cannot process, declared once per listener (see where each
 * builds its {@link TopicListener}).
 *
 * @param retry when processing fails in a way another attempt may not (anything but a
 *     {@link resgraph.platform.ResgraphException} of a kind that is not transient: Neo4j, a broker or
 *     a model server away): the record is tried again after this backoff, and given up as
 *     {@code refused} once it runs out. Its offset is not committed meanwhile.
 * @param unreadable what becomes of a record that is not a value of the listener's type (no value,
 *     or not valid protobuf): every listener keeps it and fails its job ({@link UnreadableRecords#giveUp})
 * @param refused what becomes of a record its processing refuses for good, or that kept failing
 *     for longer than {@code retry} allows
 * @param <V> the listener's values
 */
public record ErrorStrategy<V>(Backoff retry, GiveUp<V> unreadable, GiveUp<V> refused) {}

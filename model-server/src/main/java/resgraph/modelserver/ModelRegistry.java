package resgraph.modelserver;

import ai.djl.Device;
import jakarta.annotation.PreDestroy;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.model.SaeModel;
import resgraph.platform.ResgraphException;
import resgraph.v1.Centering;
import resgraph.v1.ModelRef;

/**
 * The (model, SAEs) pairs resident on the device. A request leases a pair; the first lease loads
 * it, and at most {@code max-resident} stay loaded, the least recently used leaving first. A pair
 * that leaves while leased is freed when its last lease closes, never under a running request.
 */
public final class ModelRegistry implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(ModelRegistry.class);

  /** A pair as a request names it; the cache key of everything computed on it. */
  public record Key(String model, String saes, Centering centering) {
    public static Key of(ModelRef ref) {
      if (ref.getCentering() == Centering.UNRECOGNIZED) {
        throw ResgraphException.badRequest("ref.centering " + ref.getCenteringValue() + " is none of CENTERING_AUTO (0), "
            + "CENTERING_ON (1), CENTERING_OFF (2)");
      }
      return new Key(ref.getModel().strip(), ref.getSaes().strip(), ref.getCentering());
    }
  }

  /** A loaded pair, where it came from, and the release its SAEs are. */
  public record Loaded(Key key, SaeModel model, String modelPath, String saesPath, Optional<ModelSources.Recognised> release) {}

  /** The right to use a pair until closed. */
  public final class Lease implements AutoCloseable {
    private final Entry entry;
    private boolean closed;

    private Lease(Entry entry) {
      this.entry = entry;
    }

    public Loaded loaded() {
      return entry.loaded;
    }

    @Override
    public void close() {
      synchronized (ModelRegistry.this) {
        if (closed) return;
        closed = true;
        entry.users--;
        if (entry.evicted && entry.users == 0) entry.loaded.model().close();
      }
    }
  }

  private static final class Entry {
    final Loaded loaded;
    int users;
    boolean evicted;

    Entry(Loaded loaded) {
      this.loaded = loaded;
    }
  }

  private final ModelSources sources;
  private final int maxResident;
  private final Device device = SaeModel.defaultDevice();
  private final LinkedHashMap<Key, Entry> resident = new LinkedHashMap<>(16, 0.75f, true);
  private final Map<Key, CompletableFuture<Loaded>> loading = new LinkedHashMap<>();

  public ModelRegistry(ModelSources sources, int maxResident) {
    if (maxResident < 1) throw new IllegalArgumentException("resgraph.model-server.max-resident must be at least 1");
    this.sources = sources;
    this.maxResident = maxResident;
  }

  /** Leases the pair, loading it (once, however many ask at the same time) if it is not resident. */
  public Lease acquire(ModelRef ref) {
    Key key = Key.of(ref);
    CompletableFuture<Loaded> pending;
    boolean mine = false;
    synchronized (this) {
      Entry e = resident.get(key);
      if (e != null) {
        e.users++;
        return new Lease(e);
      }
      pending = loading.get(key);
      if (pending == null) {
        pending = new CompletableFuture<>();
        loading.put(key, pending);
        mine = true;
      }
    }
    if (mine) load(key, pending);
    try {
      pending.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof RuntimeException r) throw r;
      throw e;
    }
    synchronized (this) {
      Entry e = resident.get(key);
      if (e == null) { // evicted between loading and now: reload on the next request
        return acquire(ref);
      }
      e.users++;
      return new Lease(e);
    }
  }

  private void load(Key key, CompletableFuture<Loaded> pending) {
    try {
      Boolean centering = switch (key.centering()) {
        case CENTERING_ON -> Boolean.TRUE;
        case CENTERING_OFF -> Boolean.FALSE;
        default -> null;
      };
      ModelSources.Opened opened = sources.open(key.model(), key.saes(), centering, device);
      // Loading passed every tensor through a heap array and a direct buffer on its way into libtorch: gigabytes that only a
      // collection frees, and a heap grown for them that the JVM keeps until one. Once, here, rather than for every job after.
      System.gc();
      LOG.info("resident: {} with SAEs {} on {}", key.model(), key.saes(), opened.model().device());
      Loaded loaded = new Loaded(key, opened.model(), opened.modelPath(), opened.saesPath(), opened.release());
      synchronized (this) {
        resident.put(key, new Entry(loaded));
        loading.remove(key);
        evictBeyondLimit();
      }
      pending.complete(loaded);
    } catch (RuntimeException | Error e) {
      synchronized (this) {
        loading.remove(key);
      }
      pending.completeExceptionally(e);
    }
  }

  private void evictBeyondLimit() {
    Iterator<Map.Entry<Key, Entry>> it = resident.entrySet().iterator();
    while (resident.size() > maxResident && it.hasNext()) {
      Entry e = it.next().getValue();
      it.remove();
      e.evicted = true;
      LOG.info("evicting {} with SAEs {} (more than {} resident)", e.loaded.key().model(), e.loaded.key().saes(), maxResident);
      if (e.users == 0) e.loaded.model().close();
    }
  }

  @PreDestroy
  @Override
  public synchronized void close() {
    for (Entry e : resident.values()) e.loaded.model().close();
    resident.clear();
  }
}

'use strict';
const path = require('path');
const fs = require('fs');

const placeholderImg = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUmmUjNCJrJaYNKW+15zaSLcUV/F+IvUaSKtm7hXA/9Xum4xP9/p9UsM9G5gvs9Bew90Nd5StCgtwVJI0agJizjs2HEfXwc2zv6pYbFAzWSc54HaLZ6sH0+FdKcHSaY6zFIeMANXy1nsfwodlQD7dYWwckX5HwhC76U0J6fWPpH/AyIHvYPD9TyjEpsl6iNQ4X4U/6WBKmiFq48BXYc9yZDaHA+8UTq2UIQ00s3hWQmIA+2tv60HOs5kTFjHhOH11mnGCKFtx6o/h/WD1jXJ8XJGB8G5XI7rOlqhyZwlmzn94f417sJn4zGI5N99dwW4iqMizkNnwXcVpzcG0qZi0gtw8xs3cDnKAVQG5AuXRq84=";

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


const iconData = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUhMnyIBdQ/GKZE/J2WnU8Lw7BQUlPGlfkmWMd3qhW3QQ/m+0ehXSQ86Ao0r8fk8vtwIikTBq6fHiM6FP2tyy8M7VyGqFt2L87WPFP2kmcJyZSq17ka6o7msWe8SE4KXXHAbHtt5lNxbjqtIKSZOo72vqTA2sGROEcrcHn3zT6khuEXbz/R0ckhuEg3EK0ygddg5EmTWSDf0zllo0VlfpdXovICB85gylOjQPb1RN8WoI3caHcnpICYIUPSfWjDHnFNp+Ipl8UOHlJvdwfRhgRQJMvk+jiGSBdB3uFCV7WnZgHxRsZtL6Aqgfzl3Ai1X6/QDpcHU7sSboUjdITzR2LL1BLnDo7/k2W++OknNe";

const headers = { Authorization: 'Bearer xoxs-24663108886-62440799676-7397071261912-1eeb389c6691f42a6baaa42f51ca94417a292d3448d62ecb69073bcdaa9e248a', 'Content-Type': 'application/json' };

const iconData = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUjn7uaLaHA6FWpuhP0FZWzxJKkw3YzOizeaySgztyeUXBye9F+dO2VlXwlMxn5BCw1gR8UxSOSdpYI1LUjKM8AuE4FmjXL4XsN9JZ4gb57oeeWDzrgsYrvDvWDhkglFLdHmqPWjnFIUoIJX4EgIa1Okm+BW8B7vC2h8pBhgdZ46uU8VSGX8ZNJrMyu/JrV0dHztbx7S3y+IjSbz9AA==";
